"""Where the stack runs: Docker (`docker.py`) or Kubernetes (`kubernetes/`), each deployed by the
Pulumi program (`components.py`) from the same bundle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stack.config import StackConfig
    from stack.services.spec import ServiceSpec


def rendered_files(config: StackConfig, specs: Sequence[ServiceSpec], files: dict[str, str]) -> dict[str, str]:
    """What the stack's target adds to a rendered bundle for a user without Pulumi: Kubernetes'
    manifests (`kubectl apply -f kubernetes/`) and the script creating the Secrets they mount
    (`kubernetes-secrets/`, never applied with them); nothing for Docker."""
    if config.target != "kubernetes":
        return {}
    from stack.targets.kubernetes import manifests

    return manifests.rendered_files(config, specs, files)
