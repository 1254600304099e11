"""The prod stack's Kubernetes manifests (pure functions, as `render` writes them): valid for the
configured Kubernetes version, highly available where it matters, locked down, data kept, and
a bad config refused naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pulumi_mocks import merged, stack_config

from rules.platform import OPERATOR_OWNED_ALERTS
from rules.problems import Severity
from stack.bundle import build
from stack.config import PROJECT, ConfigError, from_mapping
from stack.output import write_tree
from stack.services import node_exporter
from stack.shipped_checks import check_shipped
from stack.targets.kubernetes.manifests import manifests, replacements
from stack.targets.kubernetes.workloads import CHECKSUM_ANNOTATION

WORKLOADS = ("StatefulSet", "Deployment", "DaemonSet")
SECRET_VALUES_IN_PROD = ("pagerduty-routing-key", "slack-alerts-critical-webhook-url", "smtp-password")


def prod(overrides: dict[str, Any] | None = None):
    """The prod stack's config with `overrides` of project keys, validated as `pulumi up` would."""
    config = stack_config("prod")
    for key, value in (overrides or {}).items():
        config[f"{PROJECT}:{key}"] = merged(config.get(f"{PROJECT}:{key}"), value)
    return from_mapping(config, "Pulumi.prod.yaml")


def objects_of(config) -> list[dict[str, Any]]:
    bundle = build(config)
    return manifests(config, bundle.services, bundle.files)


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return objects_of(prod())


def find(objects, kind: str, name: str | None = None) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)}


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def workloads(objects) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] in WORKLOADS}


def test_every_manifest_is_valid_for_the_configured_kubernetes_version(objects) -> None:
    version = prod().kubernetes.version
    for item in objects:
        if item["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        kubernetes_validate.validate(item, version, strict=True)


def test_kubernetes_validate_rejects_a_broken_manifest(objects) -> None:
    broken = yaml.safe_load(yaml.safe_dump(workloads(objects)["prometheus"]))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37", strict=True)


def test_each_component_runs_as_the_workload_it_needs(objects) -> None:
    kinds = {name: o["kind"] for name, o in workloads(objects).items()}
    assert kinds == {
        "prometheus": "StatefulSet", "alertmanager": "StatefulSet", "loki": "StatefulSet",
        "grafana": "Deployment", "jaeger": "Deployment", "postgres-exporter": "Deployment",
        "redis-exporter": "Deployment", "blackbox": "Deployment", "kube-state-metrics": "Deployment",
        "alloy": "DaemonSet", "node-exporter": "DaemonSet",
        "vmstorage": "StatefulSet", "vminsert": "Deployment", "vmselect": "Deployment", "vmalert": "Deployment",
    }


def test_prometheus_is_an_ha_pair_with_distinct_replica_labels_and_a_volume_each(objects) -> None:
    prometheus = workloads(objects)["prometheus"]
    assert prometheus["spec"]["replicas"] == 2
    (claim,) = prometheus["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["storageClassName"] == "standard-rwo"
    env = pod(prometheus)["containers"][0]["env"]
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in env
    config = yaml.safe_load(build(prod()).files["prometheus/prometheus.yml"])
    # Each replica labels its series with its own pod name; Alertmanager never sees the label.
    assert config["global"]["external_labels"]["replica"] == "${POD_NAME}"
    assert config["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]


@pytest.mark.parametrize("replicas", [1, 3, 5])
def test_alertmanager_peers_match_the_replica_count(replicas: int) -> None:
    objects = objects_of(prod({"services": {"alertmanager": {"replicas": replicas}}}))
    alertmanager = workloads(objects)["alertmanager"]
    args = pod(alertmanager)["containers"][0]["args"]
    peers = [a.removeprefix("--cluster.peer=") for a in args if a.startswith("--cluster.peer=")]
    assert alertmanager["spec"]["replicas"] == replicas
    # One replica gossips with nobody.
    assert peers == ([f"alertmanager-{i}.alertmanager-headless.monitoring.svc:9094" for i in range(replicas)]
                     if replicas > 1 else [])
    config = yaml.safe_load(build(prod({"services": {"alertmanager": {"replicas": replicas}}})).files[
        "prometheus/prometheus.yml"])
    # Prometheus sends every alert to every Alertmanager, not to one behind a Service.
    (targets,) = config["alerting"]["alertmanagers"][0]["static_configs"]
    assert targets["targets"] == [f"alertmanager-{i}.alertmanager-headless.monitoring.svc:9093"
                                  for i in range(replicas)]
    if replicas == 1:
        assert "--cluster.listen-address=" in args
        return
    headless = find(objects, "Service", "alertmanager-headless")["alertmanager-headless"]["spec"]
    gossip = {(p["port"], p["protocol"]) for p in headless["ports"]}
    assert {(9094, "TCP"), (9094, "UDP")} <= gossip
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert "--cluster.advertise-address=$(POD_IP):9094" in args


def test_every_replicated_component_has_a_disruption_budget_and_spreads_across_nodes(objects) -> None:
    budgets = find(objects, "PodDisruptionBudget")
    replicated = {n for n, o in workloads(objects).items() if o["spec"].get("replicas", 1) > 1}
    assert replicated == {"prometheus", "alertmanager", "vmstorage", "vminsert", "vmselect"}
    assert set(budgets) == replicated
    for name in replicated:
        assert budgets[name]["spec"] == {"maxUnavailable": 1,
                                         "selector": {"matchLabels": {"app.kubernetes.io/name": name}}}
        rule = pod(workloads(objects)[name])["affinity"]["podAntiAffinity"]
        (term,) = rule["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
    preferred = workloads(objects_of(prod({"kubernetes": {"antiAffinity": "preferred"}})))["prometheus"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in pod(preferred)["affinity"]["podAntiAffinity"]


def test_grafana_gets_two_replicas_only_with_an_external_database() -> None:
    alone = workloads(objects_of(prod()))["grafana"]
    assert alone["spec"]["replicas"] == 1 and alone["spec"]["strategy"] == {"type": "Recreate"}
    database = {"type": "postgres", "host": "grafana-db.medianest.svc:5432", "name": "grafana", "user": "grafana"}
    objects = objects_of(prod({"services": {"grafana": {"replicas": 2, "database": database}}}))
    shared = workloads(objects)["grafana"]
    assert shared["spec"]["replicas"] == 2
    assert "grafana" in find(objects, "PodDisruptionBudget")
    assert not find(objects, "PersistentVolumeClaim", "grafana-data")
    with pytest.raises(ConfigError, match=r"services.grafana"):
        prod({"services": {"grafana": {"replicas": 2}}})


def test_every_container_has_probes_requests_and_limits(objects) -> None:
    for name, workload in workloads(objects).items():
        for container in pod(workload)["containers"]:
            # The component: startup, readiness and liveness; a proxy beside it: the last two.
            probes = ("startupProbe", "readinessProbe", "livenessProbe") if container["name"] == name else (
                "readinessProbe", "livenessProbe")
            for probe in probes:
                check = container[probe]
                assert (check.get("httpGet", {}).get("port") or check.get("tcpSocket", {}).get("port")
                        or check.get("exec", {}).get("command")), f"{name}/{container['name']} has no {probe}"
            assert set(container["resources"]["requests"]) == {"memory", "cpu"}, name
            assert "memory" in container["resources"]["limits"], name
    # node exporter listens on the node's loopback, where the kubelet's HTTP probes cannot go.
    (node,) = [c for c in pod(workloads(objects)["node-exporter"])["containers"] if c["name"] == "node-exporter"]
    assert node["livenessProbe"]["exec"]["command"][-1] == "http://127.0.0.1:9101/"
    prometheus = pod(workloads(objects)["prometheus"])["containers"][0]
    assert prometheus["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert prometheus["livenessProbe"]["httpGet"]["path"] == "/-/healthy"


def test_pods_follow_the_restricted_pod_security_profile(objects) -> None:
    for name, workload in workloads(objects).items():
        spec = pod(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}
            assert context["readOnlyRootFilesystem"] is True, f"{name} writes to its image"
            assert context["runAsNonRoot"] is True and "runAsUser" not in context, "the pod's user"
    host = {n for n, w in workloads(objects).items()
            if pod(w).get("hostPID") or pod(w).get("hostNetwork")
            or any("hostPath" in v for v in pod(w).get("volumes", []))}
    assert host == {"node-exporter"}
    assert workloads(objects)["node-exporter"]["metadata"]["namespace"] == "monitoring-node"
    levels = {n: o["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
              for n, o in find(objects, "Namespace").items()}
    assert levels == {"monitoring": "restricted", "monitoring-node": "privileged"}
    node_mounts = pod(workloads(objects)["node-exporter"])["containers"][0]["volumeMounts"]
    assert all(m["readOnly"] for m in node_mounts if m["name"] in ("proc", "sys", "root"))


def test_only_api_clients_get_a_service_account_token(objects) -> None:
    for account in find(objects, "ServiceAccount").values():
        assert account["automountServiceAccountToken"] is False
    tokens = {n for n, w in workloads(objects).items() if pod(w)["automountServiceAccountToken"]}
    assert tokens == {"prometheus", "alloy", "kube-state-metrics"}
    for name, workload in workloads(objects).items():
        assert pod(workload)["serviceAccountName"] == name
    # node exporter's kube-rbac-proxy sends TokenReviews: a token in its container alone.
    node = pod(workloads(objects)["node-exporter"])
    mounting = {c["name"] for c in node["containers"]
                for m in c.get("volumeMounts", []) if m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"}
    assert mounting == {"kube-rbac-proxy"}
    (token,) = [v for v in node["volumes"] if v["name"] == "kube-api-access"]
    assert {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}} in token["projected"]["sources"]


def test_rbac_is_least_privilege(objects) -> None:
    roles = [o for o in objects if o["kind"] == "Role"]
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], f"{role['metadata']} has a wildcard in {key}"
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, "read-only"
    granted = {(r["metadata"]["namespace"], r["metadata"]["name"]): sorted(
        (res, tuple(rule["verbs"])) for rule in r["rules"] for res in rule["resources"]) for r in roles}
    read = ("get", "list", "watch")
    assert granted == {
        ("medianest", "medianest-prometheus"): [("pods", read)],
        ("monitoring", "medianest-prometheus"): [("pods", read)],
        ("monitoring-node", "medianest-prometheus"): [("pods", read)],
        ("medianest", "medianest-alloy"): [("pods", read), ("pods/log", ("get",))],
        # kube-state-metrics: list and watch what it reports on, where the stack and MediaNest run.
        **{(namespace, "medianest-kube-state-metrics"): [
            ("daemonsets", ("list", "watch")), ("deployments", ("list", "watch")), ("pods", ("list", "watch")),
            ("statefulsets", ("list", "watch"))] for namespace in ("medianest", "monitoring", "monitoring-node")},
    }
    for binding in find(objects, "RoleBinding").values():
        (subject,) = binding["subjects"]
        assert subject["kind"] == "ServiceAccount" and subject["namespace"] == "monitoring"
    # Cluster-wide, only what node exporter's kube-rbac-proxy needs: it may ask who a caller is
    # and whether they may get /metrics; Prometheus may get /metrics; and, for the kubelets'
    # cAdvisor, Prometheus may discover nodes and get nodes/metrics (never nodes/proxy).
    cluster = {r["metadata"]["name"]: r["rules"] for r in objects if r["kind"] == "ClusterRole"}
    assert cluster == {
        "medianest-monitoring-node-node-exporter-auth": [
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}],
        "medianest-monitoring-prometheus-metrics": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
        "medianest-monitoring-prometheus-scrape-kube-state-metrics": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
            {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]}],
    }
    bound = {b["roleRef"]["name"]: b["subjects"] for b in objects if b["kind"] == "ClusterRoleBinding"}
    assert bound == {
        "medianest-monitoring-node-node-exporter-auth": [
            {"kind": "ServiceAccount", "name": "node-exporter", "namespace": "monitoring-node"}],
        "medianest-monitoring-prometheus-metrics": [
            {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}],
        "medianest-monitoring-prometheus-scrape-kube-state-metrics": [
            {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}],
    }


def test_no_secret_value_in_a_config_map_or_manifest() -> None:
    config = prod()
    bundle = build(config)
    objects = manifests(config, bundle.services, bundle.files)
    assert not find(objects, "Secret"), "rendered manifests hold no Secret (no value to put in one)"
    for config_map in find(objects, "ConfigMap").values():
        text = yaml.safe_dump(config_map)
        assert "REPLACE-ME" not in text
        for name in SECRET_VALUES_IN_PROD:
            # Receivers name their secret files; the values are never in Alertmanager's config.
            assert f"/etc/alertmanager/secrets/{name}" in text or "alertmanager" not in config_map["metadata"]["name"]
    # Every secret a component reads is projected from its Secret, not from a ConfigMap.
    for name, workload in workloads(objects).items():
        spec = next(s for s in bundle.services if s.name == name)
        sources = next((v["projected"]["sources"] for v in pod(workload).get("volumes", []) if v["name"] == "config"),
                       [])
        projected = {i["key"] for s in sources if "secret" in s for i in s["secret"]["items"]}
        assert projected == {s.name for s in spec.secrets}, name


@pytest.mark.parametrize(("change", "readers"), [
    # The long-term store keeps one sample per scrape interval.
    ({"services": {"prometheus": {"scrapeInterval": "15s"}}}, {"prometheus", "vmstorage", "vmselect"}),
    # Dashboards draw the alert thresholds.
    ({"thresholds": {"errorRatio": 0.07}}, {"prometheus", "grafana"}),
    ({"alerting": {"receivers": {"default": {"slack": [{
        "apiUrlFile": "/etc/alertmanager/secrets/slack-alerts-webhook-url", "channel": "#alerts-prod"}]}}}},
     {"alertmanager"}),
])
def test_a_config_change_rolls_only_the_pods_that_read_it(objects, change, readers: set[str]) -> None:
    changed = objects_of(prod(change))
    before, after = workloads(objects), workloads(changed)
    rolled = {n for n in before if before[n]["spec"]["template"] != after[n]["spec"]["template"]}
    assert rolled == readers
    old_maps, new_maps = set(find(objects, "ConfigMap")), set(find(changed, "ConfigMap"))
    with_files = {m.split("-config-")[0] for m in old_maps} & readers  # the others read flags only
    assert {m.split("-config-")[0] for m in old_maps - new_maps} == with_files
    assert {m.split("-config-")[0] for m in new_maps - old_maps} == with_files
    assert all(m["immutable"] is True for m in find(changed, "ConfigMap").values())


def test_rendered_pods_carry_no_checksum_of_secrets_they_do_not_know(objects) -> None:
    # Under Pulumi a keyed hash of the values rolls the pods (test_kubernetes_program); rendered,
    # there are no values: a constant would only pretend to.
    annotated = {n for n, w in workloads(objects).items()
                 if CHECKSUM_ANNOTATION in w["spec"]["template"]["metadata"].get("annotations", {})}
    assert annotated == set()


@pytest.mark.parametrize("change", [
    {"services": {"prometheus": {"image": {"repository": "prom/prometheus", "tag": "v3.14.0"}}}},
    {"services": {"prometheus": {"retentionTime": "60d", "replicas": 3}}},
    {"thresholds": {"errorRatio": 0.07}},
    {"services": {"alertmanager": {"replicas": 5, "memory": "512Mi"}}},
])
def test_everyday_changes_replace_no_data(objects, change) -> None:
    assert replacements(objects, objects_of(prod(change))) == []


@pytest.mark.parametrize(("change", "flagged"), [
    ({"services": {"prometheus": {"volumeSize": "80Gi"}}},
     "StatefulSet/monitoring/prometheus: spec.volumeClaimTemplates changed"),
    ({"kubernetes": {"storageClass": "premium-rwo"}},
     "PersistentVolumeClaim/monitoring/grafana-data: spec.storageClassName changed"),
    ({"services": {"jaeger": {"volumeSize": "60Gi"}}},
     "PersistentVolumeClaim/monitoring/jaeger-data: spec.resources.requests.storage 50Gi -> 60Gi"),
    ({"services": {"loki": {"enabled": False}}}, "StatefulSet/monitoring/loki: deleted"),
])
def test_a_change_that_would_replace_data_is_flagged(objects, change, flagged: str) -> None:
    found = replacements(objects, objects_of(prod(change)))
    assert any(line.startswith(flagged) for line in found), found


def test_grafana_ingress_serves_tls_on_the_configured_host(objects) -> None:
    (ingress,) = find(objects, "Ingress").values()
    assert ingress["spec"]["tls"] == [{"hosts": ["grafana.medianest.com"], "secretName": "grafana-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "grafana", "port": {"name": "http"}}}
    config = stack_config("prod")
    del config[f"{PROJECT}:kubernetes"]["ingress"]
    assert not find(objects_of(from_mapping(config, "Pulumi.prod.yaml")), "Ingress")


def test_operator_mode_deploys_neither_prometheus_nor_alertmanager() -> None:
    with pytest.raises(ConfigError, match="prometheusNamespace 'monitoring' is one of the stack's namespaces"):
        prod({"kubernetes": {"prometheusOperator": {"enabled": True}}, "longTermStorage": {"mode": "none"}})
    config = prod({"kubernetes": {"namespace": "medianest-monitoring", "prometheusOperator": {"enabled": True}},
                   "longTermStorage": {"mode": "none"}})
    objects = objects_of(config)
    assert "prometheus" not in workloads(objects) and "alertmanager" not in workloads(objects)
    kinds = {o["kind"] for o in objects}
    assert {"PrometheusRule", "ServiceMonitor"} <= kinds
    assert not [r for r in objects if r["kind"] == "Role" and "prometheus" in r["metadata"]["name"]]
    # Their alerts are the operator's stack's business (kube-prometheus ships them), and no
    # dashboard links to a runbook of an alert that is not there.
    bundle = build(config)
    alerts = {rule.alert for _, rule in bundle.alerts}
    assert not alerts & set(OPERATOR_OWNED_ALERTS) and "Watchdog" in alerts
    assert set(OPERATOR_OWNED_ALERTS) <= {rule.alert for _, rule in build(prod()).alerts}
    assert not [p for p in bundle.problems() if p.severity >= Severity.ERROR]


def test_manifests_are_deterministic() -> None:
    config = prod()
    assert yaml.safe_dump(objects_of(config)) == yaml.safe_dump(objects_of(config))


@pytest.mark.parametrize(("override", "key"), [
    ({"kubernetes": {"namespace": "Monitoring"}}, "kubernetes.namespace"),
    ({"kubernetes": {"version": "latest"}}, "kubernetes.version"),
    ({"kubernetes": {"antiAffinity": "always"}}, "kubernetes.antiAffinity"),
    ({"kubernetes": {"ingress": {"tlsSecretName": None}}}, "kubernetes.ingress.tlsSecretName"),
    ({"services": {"alertmanager": {"replicas": 0}}}, "services.alertmanager.replicas"),
    ({"kubernetes": {"storageClas": "fast"}}, "kubernetes.storageClas: unknown key"),
])
def test_a_bad_prod_config_fails_naming_the_key(override, key: str) -> None:
    with pytest.raises(ConfigError, match=f"{PROJECT}:{key}"):
        prod(override)


@pytest.mark.parametrize(("services", "message"), [
    ({"prometheus": {"replicas": 2}}, "services.prometheus.replicas: above 1 needs target kubernetes"),
    ({"alertmanager": {"replicas": 3}}, "services.alertmanager.replicas: above 1 needs target kubernetes"),
    ({"alloy": {"logSource": "kubernetes"}}, "services.alloy.logSource: kubernetes needs target kubernetes"),
])
def test_replicas_and_kubernetes_log_source_need_the_kubernetes_target(services, message: str) -> None:
    config = stack_config("dev")
    config[f"{PROJECT}:services"] = services
    with pytest.raises(ConfigError) as error:
        from_mapping(config, "Pulumi.dev.yaml")
    assert f"{PROJECT}:{message}" in str(error.value)
    assert "(got" not in str(error.value), "a rule across keys never echoes the whole config"


def test_check_judges_every_rendered_manifest_and_names_a_broken_one(tmp_path) -> None:
    bundle = build(prod())
    write_tree(bundle.files, tmp_path / "out")
    out = tmp_path / "out"
    verdicts = {v.path: v for v in check_shipped(bundle, out)}
    rendered = sorted(p for p in bundle.files if p.startswith("kubernetes/"))
    assert rendered[0] == "kubernetes/00-namespaces.yaml" and "kubernetes/prometheus.yaml" in rendered
    for path in [*rendered, "prometheus/prometheus.yml"]:
        assert verdicts[path].ok, verdicts[path].output
    manifest_file = out / "kubernetes/loki.yaml"
    manifest_file.write_text(manifest_file.read_text().replace("replicas: 1", "replicas: one"))
    config_file = out / "prometheus/prometheus.yml"
    config_file.write_text(config_file.read_text().replace("role: pod", "role: pods", 1))
    verdicts = {v.path: v for v in check_shipped(bundle, out)}
    assert not verdicts["kubernetes/loki.yaml"].ok
    assert "StatefulSet loki" in verdicts["kubernetes/loki.yaml"].output
    assert not verdicts["prometheus/prometheus.yml"].ok
    assert 'prometheus.yml: unknown Kubernetes SD role "pods"' in verdicts["prometheus/prometheus.yml"].output


def test_nothing_holding_data_is_replaced_since_the_reviewed_golden_files(objects) -> None:
    """The golden manifests are what was last reviewed (and deployed); a change that would delete
    and recreate a StatefulSet, a claim or a workload's selector fails here by name, before
    `make golden` accepts it."""
    golden = Path(__file__).resolve().parent.parent / "golden" / "prod" / "kubernetes"
    reviewed = [d for path in sorted(golden.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]
    assert reviewed, "no golden manifests"
    assert replacements(reviewed, objects) == [], "this change replaces data-holding objects: review, then make golden"


def test_node_exporter_listens_on_the_nodes_loopback_behind_kube_rbac_proxy(objects) -> None:
    """The host's network is outside every NetworkPolicy: node exporter binds 127.0.0.1 there, and
    kube-rbac-proxy alone is exposed, on the node's IP, over TLS, to callers allowed /metrics."""
    spec = pod(workloads(objects)["node-exporter"])
    assert spec["hostNetwork"] is True
    containers = {c["name"]: c for c in spec["containers"]}
    assert set(containers) == {"node-exporter", "kube-rbac-proxy"}
    exporter, proxy = containers["node-exporter"], containers["kube-rbac-proxy"]
    listen = [a for a in exporter["args"] if a.startswith("--web.listen-address=")]
    assert listen == ["--web.listen-address=127.0.0.1:9101"]
    assert "ports" not in exporter
    # The only port of the pod, hence of the node: the proxy's.
    assert [(c["name"], p["containerPort"], p.get("hostPort")) for c in spec["containers"]
            for p in c.get("ports", [])] == [("kube-rbac-proxy", 9100, 9100)]
    assert proxy["image"] == "quay.io/brancz/kube-rbac-proxy:v0.22.0"
    assert {"--secure-listen-address=[$(IP)]:9100", "--upstream=http://127.0.0.1:9101/",
            "--allow-paths=/metrics"} <= set(proxy["args"])
    assert {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in proxy["env"]
    assert not any(a.startswith(("--insecure-listen-address", "--ignore-paths")) for a in proxy["args"])
    # Prometheus scrapes the proxy: HTTPS, its own token, the proxy's self-signed certificate.
    config = yaml.safe_load(build(prod()).files["prometheus/prometheus.yml"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "node-exporter"]
    assert job["scheme"] == "https"
    assert job["authorization"] == {"credentials_file": "/var/run/secrets/kubernetes.io/serviceaccount/token"}
    assert job["tls_config"] == {"insecure_skip_verify": True}
    assert {"source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": "9100",
            "action": "keep"} in job["relabel_configs"]
    # Which it can: Prometheus mounts its token (it reads the API) and may get /metrics.
    assert pod(workloads(objects)["prometheus"])["automountServiceAccountToken"] is True


def test_node_exporter_on_docker_is_unchanged() -> None:
    spec = node_exporter.service(from_mapping(stack_config("dev"), "Pulumi.dev.yaml"))
    assert "--web.listen-address=:9100" in spec.args and [p.container_port for p in spec.ports] == [9100]


def test_loki_on_a_bucket_and_an_external_store_ship_valid_manifests_and_their_secrets(tmp_path) -> None:
    """prod's scale-out options, judged as shipped: Loki on S3 (its credentials file a Secret the
    script creates) and Prometheus remote-writing with a bearer token."""
    bucket = {"endpoint": "s3.eu-west-1.amazonaws.com", "bucket": "medianest-logs", "region": "eu-west-1"}
    storage = {"mode": "remoteWrite", "external": {"url": "https://mimir.example.com/api/v1/push",
                                                   "retention": "400d",
                                                   "bearerTokenFile": "/etc/prometheus/secrets/remote-write-token"}}
    bundle = build(prod({"services": {"loki": {"objectStorage": bucket}}, "longTermStorage": storage}))
    write_tree(bundle.files, tmp_path / "out")
    verdicts = {v.path: v for v in check_shipped(bundle, tmp_path / "out")}
    for path in ("kubernetes/loki.yaml", "kubernetes/prometheus.yaml", "loki/loki.yaml", "prometheus/prometheus.yml"):
        assert verdicts[path].ok, verdicts[path].output
    script = bundle.files["kubernetes-secrets/create-secrets.sh"]
    assert "s3-credentials" in script and "remote-write-token" in script


def test_the_deployed_long_term_store_is_an_ha_cluster_with_valid_manifests(tmp_path) -> None:
    bundle = build(prod())
    namespace = bundle.config.kubernetes.namespace
    write_tree(bundle.files, tmp_path / "out")
    verdicts = {v.path: v for v in check_shipped(bundle, tmp_path / "out")}
    for name in ("vmstorage", "vminsert", "vmselect"):
        assert verdicts[f"kubernetes/{name}.yaml"].ok, verdicts[f"kubernetes/{name}.yaml"].output
    objects = manifests(bundle.config, bundle.services, bundle.files)
    storage, insert, select = (workloads(objects)[n] for n in ("vmstorage", "vminsert", "vmselect"))
    # Three storage nodes with a volume each, every sample on two of them.
    assert storage["kind"] == "StatefulSet" and storage["spec"]["replicas"] == 3
    [claim] = storage["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert "-retentionPeriod=400d" in pod(storage)["containers"][0]["args"]
    nodes = ",".join(f"vmstorage-{i}.vmstorage-headless.{namespace}.svc:{{}}" for i in range(3))
    for workload, port in ((insert, 8400), (select, 8401)):
        assert workload["kind"] == "Deployment" and workload["spec"]["replicas"] == 2
        args = pod(workload)["containers"][0]["args"]
        assert f"-storageNode={nodes.format(*[port] * 3)}" in args and "-replicationFactor=2" in args
    # Replicated copies and the HA pair's twins: one sample per scrape interval, read and stored.
    assert "-dedup.minScrapeInterval=30s" in pod(select)["containers"][0]["args"]
    assert "-dedup.minScrapeInterval=30s" in pod(storage)["containers"][0]["args"]
    prometheus_yml = yaml.safe_load(bundle.files["prometheus/prometheus.yml"])
    assert prometheus_yml["remote_write"][0]["url"] == (
        f"http://vminsert.{namespace}.svc:8480/insert/0/prometheus/api/v1/write")
    sources = yaml.safe_load(bundle.files["grafana/provisioning/datasources/datasources.yaml"])["datasources"]
    assert [s["url"] for s in sources if s["uid"] == "long-term"] == ["http://vmselect:8481/select/0/prometheus"]


def test_more_copies_than_storage_nodes_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"services\.vmstorage\.replicationFactor: 3 copies need at least as many "
                                          r"replicas \(replicas is 2\)"):
        prod({"services": {"vmstorage": {"replicas": 2, "replicationFactor": 3}}})
