"""vmalert: evaluates the SLOs' period-long rules (the period's error ratio, the budget left) on
the long-term store the stack deploys, where the period's history is, and writes what they record
back to it. Prometheus keeps every other rule (burn-rate windows of hours to days, every alert):
its own retention then needs to cover those windows only, and a Prometheus replaced or wiped
does not reset a 30-day budget.

Its store: the single node on Docker, the cluster on Kubernetes (read through vmselect, written
through vminsert). It reads the groups under `long-term/rules/` (stack.layout), which promtool's
tests load beside the Prometheus file of the same SLO, and `vmalert -dryRun` judges them.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from rules.alert_tests import counter, series, silent
from rules.alert_tests import fires as _fires_of
from rules.catalog import Metric, MetricType
from rules.conventions import AlertSeverity
from rules.expressions import down_description, target_down
from rules.model import AlertingRule, alert
from rules.slo.history import History
from rules.testing import Expected, RuleTest
from stack import layout
from stack.images import Official
from stack.services import victoria_metrics, vminsert, vmselect, vmstorage
from stack.services.common import image, mounted, resources
from stack.services.component import STACK_HEALTH, ComponentModule, FileCheck, Job, SandboxEndpoint, SandboxWorld
from stack.services.spec import Flow, MetricsEndpoint, Port, ServiceSpec, StackPods, Workload, http_health, tcp
from stack.settings import Component, ImageRef, Interval, Memory, _image

if TYPE_CHECKING:
    from collections.abc import Mapping

    from stack.config import StackConfig


class VmalertService(Component):
    image: ImageRef = _image("victoriametrics/vmalert", "v1.151.0")
    memory: Memory = "256Mi"
    # How often the period rules are evaluated; default: the stack's evaluationInterval.
    evaluation_interval: Interval | None = None


NAME = "vmalert"
PORT = 8880
CONFIG_DIR = "/etc/vmalert"
RULES_DIR = f"{CONFIG_DIR}/rules"


def _cluster(config: StackConfig) -> bool:
    return config.target == "kubernetes"


def store_urls(config: StackConfig) -> tuple[str, str]:
    """(Prometheus query API, remote write base) of the store: vmalert adds /api/v1/write."""
    if _cluster(config):
        return vmselect.query_url(config), vminsert.write_url(config).removesuffix("/api/v1/write")
    root = victoria_metrics.write_url(config).removesuffix(victoria_metrics.WRITE_PATH)
    return root, root


def history(config: StackConfig) -> History:
    """The store's retention: what the period rules it evaluates can read."""
    if _cluster(config):
        return History(config.services.vmstorage.retention, "services.vmstorage.retention")
    return History(config.services.victoria_metrics.retention, "services.victoriaMetrics.retention")


def _flows(config: StackConfig) -> tuple[Flow, ...]:
    if _cluster(config):
        return (Flow(StackPods(NAME), StackPods(vmselect.NAME), tcp(vmselect.PORT)),
                Flow(StackPods(NAME), StackPods(vminsert.NAME), tcp(vminsert.PORT)))
    return (Flow(StackPods(NAME), StackPods(victoria_metrics.NAME), tcp(victoria_metrics.PORT)),)


def service(config: StackConfig, files: Mapping[str, str]) -> ServiceSpec:
    settings = config.services.vmalert
    query, write = store_urls(config)
    return ServiceSpec(
        workload=Workload(placement="stateless"),
        flows=_flows(config),
        name=NAME,
        image=image(settings.image),
        user=vmstorage.USER,
        resources=resources(settings),
        args=(
            f"-rule={RULES_DIR}/*.yaml",
            f"-datasource.url={query}",
            f"-remoteWrite.url={write}",
            f"-evaluationInterval={settings.evaluation_interval or config.evaluation_interval}",
            f"-httpListenAddr=:{PORT}",
        ),
        ports=(Port("http", PORT),),
        config_dir=CONFIG_DIR,
        files=mounted(files, layout.LONG_TERM_RULES_DIR + "/", RULES_DIR),
        health=http_health(PORT, "/health"),
        metrics=MetricsEndpoint(job=config.jobs.vmalert, port=PORT),
    )


def check_rules(config: StackConfig, path: Path) -> tuple[bool, str]:
    """`vmalert -dryRun` on the directory, built at the shipped version: every group parses as
    MetricsQL."""
    from stack.judges import by_binary  # the judges read the registry

    binary = by_binary()["vmalert"].output / "vmalert"
    result = subprocess.run([str(binary), f"-rule={path}/*.yaml", "-dryRun", "-loggerLevel=ERROR"],
                            capture_output=True, text=True, check=False)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


# --- metrics and alerts ---------------------------------------------------------------------------

C = MetricType.COUNTER
# Checked against the shipped version (tests/e2e/test_catalog_on_shipped_binaries.py).
METRICS = (
    Metric("vmalert_recording_rules_errors_total", C, "Evaluations of a recording rule that failed",
           ("recording", "group", "file")),
    Metric("vmalert_remotewrite_dropped_rows_total", C, "Recorded samples dropped after failing to be written"),
)

EXPECTED = {
    "LongTermRulesDown": Expected("warning", "platform", "The SLO period rules are not evaluated"),
    "LongTermRulesFailing": Expected("warning", "platform", "An SLO period rule fails to evaluate"),
    "LongTermRulesNotWritten": Expected("warning", "platform", "SLO period results are dropped"),
}
INSTANCE = f"{NAME}:{PORT}"
STALE = ("the error budget left and the period's ratio stop updating (burn-rate alerts, evaluated by "
         "Prometheus, are unaffected).")


def alerts(config: StackConfig) -> tuple[AlertingRule, ...]:
    me = f'job="{config.jobs.vmalert}"'
    common = {"severity": AlertSeverity.WARNING, "service": "platform", "runbook_base_url": config.runbook_base_url}
    return (
        alert("LongTermRulesDown", target_down(config.jobs.vmalert), for_="15m",
              summary="The SLO period rules are not evaluated",
              description=down_description("The SLO period rules' evaluator", "15 minutes") + f" Meanwhile {STALE}",
              **common),
        alert("LongTermRulesFailing",
              f"sum by (job, instance, group) (rate(vmalert_recording_rules_errors_total{{{me}}}[5m])) > 0",
              for_="15m", summary="An SLO period rule fails to evaluate",
              description="Rules of {{ $labels.group }} fail on {{ $labels.instance }} for 15 minutes (the store "
                          f"cannot answer them): {STALE}", **common),
        alert("LongTermRulesNotWritten",
              f"sum by (job, instance) (rate(vmalert_remotewrite_dropped_rows_total{{{me}}}[5m])) > 0",
              for_="15m", summary="SLO period results are dropped",
              description="{{ $labels.instance }} drops what the SLO period rules record for 15 minutes (the store "
                          f"refuses its writes): {STALE}", **common),
    )


def alert_tests(config: StackConfig) -> tuple[RuleTest, ...]:
    me = {"job": config.jobs.vmalert, "instance": INSTANCE}
    group = {"group": "slo.api-availability.period", "file": f"{RULES_DIR}/slo-api-availability.yaml",
             "recording": "slo:period_error_budget_remaining:ratio"}

    def fires(at: str, alert_name: str, description: str, /, **labels: str):  # noqa: ANN202
        return _fires_of(EXPECTED, at, alert_name, description, **labels)

    return (
        RuleTest("The period rules' evaluator down for 15 minutes opens a ticket",
                 series=(series("up", "1 0x20", **me),),
                 alerts=(silent("10m", "LongTermRulesDown"),
                         fires("18m", "LongTermRulesDown", "The SLO period rules' evaluator cannot be reached "
                               f"through {INSTANCE} for more than 15 minutes. Meanwhile {STALE}", **me))),
        RuleTest("Period rules failing for 15 minutes open a ticket; evaluations without errors stay silent",
                 series=(series("vmalert_recording_rules_errors_total", counter(2, 30), **group, **me),
                         series("vmalert_recording_rules_errors_total", "0x30",
                                **{**group, "group": "slo.api-latency.period"}, **me)),
                 alerts=(silent("10m", "LongTermRulesFailing"),
                         fires("25m", "LongTermRulesFailing", f"Rules of {group['group']} fail on {INSTANCE} for "
                               f"15 minutes (the store cannot answer them): {STALE}", group=group["group"], **me))),
        RuleTest("Recorded results dropped for 15 minutes open a ticket; none dropped stays silent",
                 series=(series("vmalert_remotewrite_dropped_rows_total", "0x5 0+10x25", **me),),
                 alerts=(silent("5m", "LongTermRulesNotWritten"),
                         fires("25m", "LongTermRulesNotWritten", f"{INSTANCE} drops what the SLO period rules record "
                               f"for 15 minutes (the store refuses its writes): {STALE}", **me))),
    )


# app/vmalert/deployment/Dockerfile: alpine base, EXPOSE 8880, ENTRYPOINT /vmalert-prod, no USER.
LOCAL_IMAGE = Official({"/vmalert-prod": "vmalert"}, ("/vmalert-prod",), ("8880/tcp",), base="alpine")


def sandbox_settings(world: SandboxWorld) -> dict[str, str]:
    return {"evaluationInterval": world.evaluation_interval}


COMPONENT = ComponentModule(
    name=NAME, settings_key="vmalert", settings=VmalertService,
    service=lambda config, files, others: service(config, files),
    wanted=victoria_metrics.wanted, slo_period_history=history,
    job=Job("vmalert", "vmalert"),
    metrics=METRICS, alerts=alerts, alert_group="platform.meta", alert_tests=alert_tests, expected=EXPECTED,
    dashboard=STACK_HEALTH,
    file_checks=(FileCheck(layout.LONG_TERM_RULES_DIR, "vmalert -dryRun", check_rules),),
    sandbox_binary="vmalert", sandbox_settings=sandbox_settings,
    sandbox_endpoint=SandboxEndpoint(PORT, "the SLO period rules it evaluates on the long-term store: /api/v1/rules"),
    # Built with the store, from the same module and version; its image is its own repository.
    judge=dataclasses.replace(victoria_metrics.JUDGE, image_repository="victoriametrics/vmalert"),
    local_image=LOCAL_IMAGE,
)
