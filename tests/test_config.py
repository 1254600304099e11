"""Stack config: both stacks load; bad files fail with the file, the key and what is valid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stack.cli import main
from stack.config import ROOT, ConfigError, load_stack


def test_both_stacks_load_with_their_own_values() -> None:
    dev, prod = load_stack("dev"), load_stack("prod")
    assert (dev.environment, prod.environment) == ("dev", "prod")
    assert dev.jobs.backend == prod.jobs.backend == "medianest-backend"
    assert prod.runbook_base_url.startswith("https://")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    return tmp_path


_ALERTING = ("config:\n  medianest-observability:environment: dev\n"
             "  medianest-observability:runbookBaseUrl: https://r\n")

BAD_FILES = [
    ("malformed YAML", "config: [unclosed\n", "Pulumi.dev.yaml: not valid YAML"),
    ("an unknown top-level key",
     "config:\n  medianest-observability:environment: dev\n"
     "  medianest-observability:runbookBaseUrl: https://r\n  medianest-observability:colour: red\n",
     "medianest-observability:colour: unknown key; valid keys here: addresses, alerting, backend, compression, "
     "environment, evaluationInterval, jobs, kubernetes, longTermStorage, runbookBaseUrl, services, target, "
     "thresholds"),
    ("a key of an earlier version",
     "config:\n  medianest-observability:environment: dev\n"
     "  medianest-observability:runbookBaseUrl: https://r\n  medianest-observability:grafana: {cookieSecure: true}\n",
     "medianest-observability:grafana: moved: Grafana's settings (adminPasswordFile, cookieSecure, rootUrl) are "
     "under services.grafana"),
    *(  # Components: pinned images, sizes, mountable secrets, sane retention.
        (name, "config:\n  medianest-observability:environment: dev\n"
               "  medianest-observability:runbookBaseUrl: https://r\n" + line + "\n", message)
        for name, line, message in [
            ("an image by latest", "  medianest-observability:services: "
             "{grafana: {image: {repository: grafana/grafana, tag: latest}}}",
             "medianest-observability:services.grafana.image.tag: Value error, must be an exact version tag"),
            ("an invented digest", "  medianest-observability:services: "
             "{loki: {image: {repository: grafana/loki, tag: 3.7.1, digest: 'sha256:abc'}}}",
             "medianest-observability:services.loki.image.digest: String should match pattern"),
            ("a memory size without unit", "  medianest-observability:services: {prometheus: {memory: 2048}}",
             "medianest-observability:services.prometheus.memory: Input should be a valid string"),
            ("a memory size in decimal units", "  medianest-observability:services: {prometheus: {memory: 2GB}}",
             "medianest-observability:services.prometheus.memory: Value error, must be a size like 256Mi"),
            ("a published port out of range", "  medianest-observability:services: {grafana: {publish: 70000}}",
             "medianest-observability:services.grafana.publish: Input should be less than or equal to 65535"),
            ("Loki retention under a day", "  medianest-observability:services: {loki: {retentionPeriod: 12h}}",
             "medianest-observability:services.loki.retentionPeriod: Value error, must be at least 24h"),
            ("Docker logs without the socket's group", "  medianest-observability:services: "
             "{alloy: {logSource: docker}}",
             "medianest-observability:services.alloy: Value error, logSource docker needs dockerSocketGroup"),
            ("Grafana's password file where nothing is mounted",
             "  medianest-observability:services: {grafana: {adminPasswordFile: /run/secrets/admin}}",
             "medianest-observability:services.grafana.adminPasswordFile: Value error, must live under "
             "/etc/grafana/secrets/"),
            ("an unknown target", "  medianest-observability:target: nomad",
             "medianest-observability:target: Input should be 'docker' or 'kubernetes'"),
        ]
    ),
    ("a wrong type", "config:\n  medianest-observability:environment: dev\n"
     "  medianest-observability:runbookBaseUrl: https://r\n"
     "  medianest-observability:thresholds: {errorRatio: lots}\n",
     "medianest-observability:thresholds.errorRatio: Input should be a valid number"),
    ("a ratio given as a percentage", "config:\n  medianest-observability:environment: dev\n"
     "  medianest-observability:runbookBaseUrl: https://r\n"
     "  medianest-observability:thresholds: {errorRatio: 5}\n",
     "thresholds.errorRatio: Input should be less than 1 (got 5)"),
    ("a missing required key", "config:\n  medianest-observability:environment: dev\n",
     "medianest-observability:runbookBaseUrl: Field required"),
    ("a bad duration", "config:\n  medianest-observability:environment: dev\n"
     "  medianest-observability:runbookBaseUrl: https://r\n"
     "  medianest-observability:evaluationInterval: 1 minute\n",
     "medianest-observability:evaluationInterval: Value error, invalid duration '1 minute'"),
    ("not a mapping", "- a\n- b\n", "expected a mapping"),
    *(  # Alertmanager receivers: secrets only as mounted files, nothing left unrouted.
        (name, _ALERTING + "  medianest-observability:alerting: " + alerting + "\n", message)
        for name, alerting, message in [
            ("an inline Slack webhook URL is not a key",
             "{receivers: {criticalAlerts: {slack: [{apiUrl: 'https://hooks.slack.com/x', channel: '#a'}]}}}",
             "medianest-observability:alerting.receivers.criticalAlerts.slack.0.apiUrl: unknown key; "
             "valid keys here: apiUrlFile, channel"),
            ("an inline PagerDuty key is not a key",
             "{receivers: {criticalAlerts: {pagerduty: [{routingKey: abc123}]}}}",
             "alerting.receivers.criticalAlerts.pagerduty.0.routingKey: unknown key; "
             "valid keys here: routingKeyFile"),
            ("a receiver the policy does not have",
             "{receivers: {pager: {slack: [{apiUrlFile: /s/x, channel: '#a'}]}}}",
             "medianest-observability:alerting.receivers.pager: unknown key; valid keys here: "
             "businessTeam, criticalAlerts, deadman, default, tickets"),
            ("a secret file given as a relative path",
             "{receivers: {tickets: {email: [{to: t@m.com, from: a@m.com, smarthost: 'smtp:587', "
             "authPasswordFile: smtp-password}]}}}",
             "alerting.receivers.tickets.email.0.authPasswordFile: Value error, must be the absolute "
             "path of a mounted secret file"),
            ("a webhook URL carrying a token",
             "{receivers: {deadman: {webhook: [{url: 'https://hb.example/ping?token=abc'}]}}}",
             "alerting.receivers.deadman.webhook.0.url: Value error, must not carry credentials"),
            ("a receiver with no integration", "{receivers: {default: {}}}",
             "alerting.receivers.default: Value error, configure at least one of pagerduty, slack"),
            ("receivers left out with no local webhook to fall back on",
             "{localWebhookUrl: null, receivers: {default: {slack: [{apiUrlFile: /etc/alertmanager/secrets/x, "
             "channel: '#a'}]}}}",
             "medianest-observability:alerting: Value error, receivers criticalAlerts, businessTeam, "
             "tickets, deadman are not configured and localWebhookUrl is null"),
            ("a secret file Alertmanager is not given",
             "{receivers: {default: {slack: [{apiUrlFile: /run/secrets/slack, channel: '#a'}]}}}",
             "medianest-observability:alerting.receivers.default.slack.0.apiUrlFile: Value error, must live "
             "under /etc/alertmanager/secrets/"),
            ("a secret file in a subdirectory (two files could share a name)",
             "{receivers: {default: {slack: [{apiUrlFile: /etc/alertmanager/secrets/url, channel: '#a'}]}, "
             "tickets: {slack: [{apiUrlFile: /etc/alertmanager/secrets/x/url, channel: '#b'}]}}}",
             "medianest-observability:alerting.receivers.tickets.slack.0.apiUrlFile: Value error, must live "
             "under /etc/alertmanager/secrets/ (where the stack mounts Alertmanager's secrets), as a plain file "
             "name"),
        ]
    ),
]


@pytest.mark.parametrize(("text", "message"), [r[1:] for r in BAD_FILES], ids=[r[0] for r in BAD_FILES])
def test_bad_stack_file_names_the_file_and_key(project: Path, text: str, message: str) -> None:
    (project / "Pulumi.dev.yaml").write_text(text)
    with pytest.raises(ConfigError) as error:
        load_stack("dev", project)
    assert message in str(error.value)
    assert str(error.value).startswith("Pulumi.dev.yaml")


def test_a_missing_stack_lists_the_stacks() -> None:
    with pytest.raises(ConfigError, match=r"Pulumi.staging.yaml: no such stack file \(stacks: dev, prod\)"):
        load_stack("staging")


def test_cli_exits_2_on_bad_receiver_config(project: Path, monkeypatch, capsys) -> None:
    original = (ROOT / "Pulumi.dev.yaml").read_text()
    text = original.replace(
        "localWebhookUrl: http://host.docker.internal:9099",
        "localWebhookUrl: http://host.docker.internal:9099\n    receivers: {default: {slack: [{apiUrl: https://hooks/x}]}}")
    assert text != original
    (project / "Pulumi.dev.yaml").write_text(text)
    monkeypatch.setattr("stack.cli.ROOT", project)
    assert main(["check", "--stack", "dev"]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.dev.yaml" in err and "medianest-observability:alerting.receivers.default.slack.0.apiUrl" in err


def test_other_namespaces_belong_to_providers(project: Path) -> None:
    text = (ROOT / "Pulumi.dev.yaml").read_text() + "  docker:host: unix:///var/run/docker.sock\n"
    (project / "Pulumi.dev.yaml").write_text(text)
    assert load_stack("dev", project).environment == "dev"


def test_cli_exits_2_on_bad_config(project: Path, monkeypatch, capsys) -> None:
    (project / "Pulumi.dev.yaml").write_text("config:\n  medianest-observability:environment: Dev!\n")
    monkeypatch.setattr("stack.cli.ROOT", project)
    assert main(["render", "--stack", "dev", "--out", str(project / "out")]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.dev.yaml" in err and "medianest-observability:environment" in err
    assert not (project / "out").exists()


def test_datasource_urls_must_be_urls(project: Path) -> None:
    (project / "Pulumi.dev.yaml").write_text(
        "config:\n  medianest-observability:environment: dev\n"
        "  medianest-observability:runbookBaseUrl: https://r\n"
        "  medianest-observability:services:\n    loki:\n      datasourceUrl: loki:3100\n")
    with pytest.raises(ConfigError) as error:
        load_stack("dev", project)
    assert "medianest-observability:services.loki.datasourceUrl: Value error, must be an http(s) URL" in str(
        error.value)


def test_a_secret_in_the_wrong_field_is_not_echoed(project: Path) -> None:
    (project / "Pulumi.dev.yaml").write_text(
        "config:\n  medianest-observability:environment: dev\n"
        "  medianest-observability:runbookBaseUrl: https://r\n"
        "  medianest-observability:alerting:\n    receivers:\n      criticalAlerts:\n        pagerduty:\n"
        "          - routingKeyFile: R0ABCDEF1234567890SECRET\n")
    with pytest.raises(ConfigError) as error:
        load_stack("dev", project)
    assert "medianest-observability:alerting.receivers.criticalAlerts.pagerduty.0.routingKeyFile" in str(error.value)
    assert "R0ABCDEF1234567890SECRET" not in str(error.value)


def test_the_evaluation_interval_is_one_minute(project: Path) -> None:
    text = (ROOT / "Pulumi.dev.yaml").read_text().replace("evaluationInterval: 1m", "evaluationInterval: 30s")
    (project / "Pulumi.dev.yaml").write_text(text)
    with pytest.raises(ConfigError, match="evaluationInterval: Value error, must be 1m"):
        load_stack("dev", project)
