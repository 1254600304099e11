"""The sandbox's configuration: the dev stack's, with every component on loopback, notifications
to the sink and the components without a binary here switched off (no process needed)."""

from __future__ import annotations

import pytest
import yaml

from stack.bundle import build
from stack.config import StackConfig
from stack.sandbox.datastores import Postgres, Redis
from stack.sandbox.run import UNAVAILABLE, Ports, sandbox_config


def _config(dev_config: StackConfig, compressed: bool = False) -> StackConfig:
    ports = Ports(metrics={"prometheus": (1001,), "alertmanager": (1002, 1003, 1004), "node-exporter": (1008,),
                           "postgres-exporter": (1009,), "redis-exporter": (1010,), "blackbox": (1011,),
                           "jaeger": (1016,), "victoria-metrics": (1017,), "vmalert": (1018,)},
                  simulator=1012, sink=1013)
    postgres = Postgres(host="127.0.0.1", port=1014, database="medianest", user="postgres_exporter", password="p",
                        superuser="postgres", socket_dir="/tmp", data_dir="/tmp")
    redis = Redis(host="127.0.0.1", port=1015, password=None)
    return sandbox_config(dev_config, ports, postgres, redis, scrape_interval="2s", evaluation_interval="2s",
                          compressed=compressed)


def test_every_target_and_notification_stays_on_loopback(dev_config: StackConfig) -> None:
    bundle = build(_config(dev_config))
    prometheus = yaml.safe_load(bundle.files["prometheus/prometheus.yml"])
    targets = [t for job in prometheus["scrape_configs"] for group in job["static_configs"] for t in group["targets"]]
    assert targets and all(t.startswith(("127.0.0.1:", "http://127.0.0.1:")) for t in targets), targets
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:1002", "127.0.0.1:1003", "127.0.0.1:1004"]
    assert prometheus["global"]["evaluation_interval"] == "2s"
    # The long-term store the dev stack deploys, written to on loopback.
    assert [w["url"] for w in prometheus["remote_write"]] == ["http://127.0.0.1:1017/api/v1/write"]
    alertmanager = yaml.safe_load(bundle.files["alertmanager/alertmanager.yml"])
    urls = [w["url"] for r in alertmanager["receivers"] for w in r.get("webhook_configs", [])]
    assert urls and all(u.startswith("http://127.0.0.1:1013/") for u in urls)


def test_components_without_a_binary_are_switched_off_and_the_rest_passes_the_checks(dev_config: StackConfig) -> None:
    bundle = build(_config(dev_config))
    assert {s.name for s in bundle.services}.isdisjoint(UNAVAILABLE)
    assert not bundle.problems()
    assert bundle.coverage().ratio == 1.0


def test_a_compressed_sandbox_has_short_slo_windows_and_quick_renotification(dev_config: StackConfig) -> None:
    shipped, compressed = build(_config(dev_config)), build(_config(dev_config, compressed=True))
    assert "[1h]" in shipped.files["prometheus/rules/slo-api-availability.yaml"]
    # 5 days: the page's windows are 10m and 1h (each with a 5m short window), not 1h and 6h.
    rules = compressed.files["prometheus/rules/slo-api-availability.yaml"]
    assert "slo:sli_error:ratio_rate10m" in rules and "[6h]" not in rules
    routes = [yaml.safe_load(b.files["alertmanager/alertmanager.yml"])["route"]["group_interval"]
              for b in (shipped, compressed)]
    assert routes == ["5m", "10s"]
    assert compressed.config.compression.resend_delay == "5s"
    assert not compressed.problems() and compressed.coverage().ratio == 1.0


def test_only_the_sandbox_compresses_time(dev_config: StackConfig) -> None:
    data = dev_config.model_dump(by_alias=True) | {"compression": {"sloPeriod": "5d"}}
    with pytest.raises(ValueError, match="compression: only the sandbox"):
        StackConfig.model_validate(data)
