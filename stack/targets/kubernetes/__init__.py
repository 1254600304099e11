"""The Kubernetes target (the `prod` stack). `manifests.py` turns the service specs into plain
manifests (pure functions, rendered by `python -m stack render`); `resources.py` hands the same
manifests to pulumi-kubernetes. Nothing here imports Pulumi except `resources.py`."""
