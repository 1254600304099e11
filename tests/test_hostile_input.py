"""Hostile stack files: every one is refused through the CLI (`check --stack dev`, exit 2) with
exactly one line naming the file and the key (or, for YAML itself, the line and column), never
echoing a planted secret, and nothing written. Then the same policy where config comes from
Pulumi (secret keys) and for SLO objectives, which are reported as `[slo]` problems."""

from __future__ import annotations

import copy
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.metrics import CATALOG
from rules.slo import slo_rule_files
from rules.slos import slos
from stack import cli
from stack.config import PROJECT, ROOT, ConfigError, from_mapping, load_stack

PLANTED = "S3cret-planted"
FILE = "Pulumi.dev.yaml"
SHIPPED = (ROOT / FILE).read_text()
BASE: dict[str, Any] = yaml.safe_load(SHIPPED)


def _with(**changes: Any) -> str:
    """The shipped dev stack file with `key.sub.key=value` changes (keys under our project)."""
    document = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        key, *path = dotted.split("__")
        node = document["config"]
        name = f"{PROJECT}:{key}"
        if not path:
            node[name] = value
            continue
        node = node.setdefault(name, {})
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return yaml.safe_dump(document, sort_keys=False)


def _raw(line: str) -> str:
    """The shipped file with one more line under `config:` (two-space indented)."""
    return SHIPPED.replace("config:\n", f"config:\n{line}\n", 1)


def _nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


RECEIVER = "alerting__receivers"
AM_SECRETS = "/etc/alertmanager/secrets/"
_slack = [{"apiUrlFile": AM_SECRETS + "slack", "channel": "#alerts"}]
BILLION_LAUGHS = ('  medianest-observability:jobs:\n    backend: &a ["lol","lol","lol","lol","lol","lol","lol"]\n'
                  '    node: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n    postgres: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
                  '    redis: [*c,*c,*c,*c,*c,*c,*c,*c,*c]')

# (id, stack file text or bytes, what the one error line says after `error: Pulumi.dev.yaml: `)
CASES: list[tuple[str, str | bytes, str]] = [
    # Credentials in URLs and addresses: refused, the value never echoed.
    ("postgres DSN with user:password@",
     _with(services__postgresExporter__dataSourceUri=f"postgres://medianest:{PLANTED}@db:5432/medianest"),
     f"{PROJECT}:services.postgresExporter.dataSourceUri: Value error, must not carry a scheme or credentials"),
    ("postgres DSN without scheme but with user:password@",
     _with(services__postgresExporter__dataSourceUri=f"medianest:{PLANTED}@db:5432/medianest"),
     f"{PROJECT}:services.postgresExporter.dataSourceUri: Value error, must not carry a scheme or credentials"),
    ("postgres DSN with a password option",
     _with(services__postgresExporter__dataSourceUri=f"db:5432/medianest?sslmode=require&password={PLANTED}"),
     f"{PROJECT}:services.postgresExporter.dataSourceUri: Value error, must not carry a password option"),
    ("redis address with redis://:password@",
     _with(services__redisExporter__address=f"redis://:{PLANTED}@cache:6379"),
     f"{PROJECT}:services.redisExporter.address: Value error, must not carry credentials (redis://:password@"),
    ("redis address with user:password@",
     _with(services__redisExporter__address=f"rediss://default:{PLANTED}@cache:6379"),
     f"{PROJECT}:services.redisExporter.address: Value error, must not carry credentials"),
    ("redis address with a password query",
     _with(services__redisExporter__address=f"redis://cache:6379?password={PLANTED}"),
     f"{PROJECT}:services.redisExporter.address: Value error, must not carry a query string"),
    ("postgres user carrying a password",
     _with(services__postgresExporter__user=f"exporter:{PLANTED}"),
     f"{PROJECT}:services.postgresExporter.user: String should match pattern"),
    ("local webhook URL with user:password@",
     _with(alerting__localWebhookUrl=f"http://sink:{PLANTED}@host.docker.internal:9099"),
     f"{PROJECT}:alerting.localWebhookUrl: Value error, must not carry credentials (user:password@)"),
    ("runbook URL with a token parameter",
     _with(runbookBaseUrl=f"https://runbooks.medianest.example/alerts?token={PLANTED}"),
     f"{PROJECT}:runbookBaseUrl: Value error, must not carry a query string"),
    ("probe target with user:password@",
     _with(services__blackboxExporter__targets=[f"https://admin:{PLANTED}@medianest.example/api/health"]),
     f"{PROJECT}:services.blackboxExporter.targets.0: Value error, must not carry credentials"),
    ("probe target with an api_key parameter",
     _with(services__blackboxExporter__targets=[f"https://medianest.example/api/health?api_key={PLANTED}"]),
     f"{PROJECT}:services.blackboxExporter.targets.0: Value error, must not carry credentials in its query"),
    ("Grafana datasource URL with user:password@",
     _with(services__prometheus__datasourceUrl=f"http://admin:{PLANTED}@prometheus:9090"),
     f"{PROJECT}:services.prometheus.datasourceUrl: Value error, must not carry credentials"),
    ("a URL port that is not a number",
     _with(services__grafana__rootUrl=f"http://grafana:{PLANTED}"),
     f"{PROJECT}:services.grafana.rootUrl: Value error, must be a URL with a valid host and a port"),
    # Pulumi secrets: only under `secrets`, and always encrypted there.
    ("a secure value outside secrets",
     _with(services__postgresExporter__dataSourceUri={"secure": f"v1:{PLANTED}"}),
     f"{PROJECT}:services.postgresExporter.dataSourceUri: a Pulumi secret outside secrets"),
    ("a whole key set with --secret",
     _with(runbookBaseUrl={"secure": f"v1:{PLANTED}"}),
     f"{PROJECT}:runbookBaseUrl: a Pulumi secret outside secrets"),
    ("a plain-text value under secrets",
     _with(secrets={"postgres-password": PLANTED}),
     f"{PROJECT}:secrets.postgres-password: a plain-text value (hidden)"),
    ("secrets as a plain string",
     _with(secrets=PLANTED),
     f"{PROJECT}:secrets: must be a mapping of secret file names"),
    ("a secret named like a path out of its directory",
     _with(secrets={"../alertmanager.yml": {"secure": f"v1:{PLANTED}"}}),
     f"{PROJECT}:secrets.../alertmanager.yml: not a secret file name"),
    ("a secret named ..",
     _with(secrets={"..": {"secure": "v1:abc"}}),
     f"{PROJECT}:secrets...: not a secret file name"),
    # Secret files: a plain name, exactly in the secrets directory.
    ("a secret file climbing to alertmanager.yml",
     _with(**{RECEIVER: {"default": {"slack": [{"apiUrlFile": AM_SECRETS + "../alertmanager.yml",
                                                "channel": "#a"}]}}}),
     f"{PROJECT}:alerting.receivers.default.slack.0.apiUrlFile: Value error, must live under {AM_SECRETS}"),
    ("a secret file climbing to /proc/self/environ",
     _with(**{RECEIVER: {"criticalAlerts": {"pagerduty": [
         {"routingKeyFile": AM_SECRETS + "../../../proc/self/environ"}]}}}),
     f"{PROJECT}:alerting.receivers.criticalAlerts.pagerduty.0.routingKeyFile: Value error, must live under"),
    ("Grafana's password file as ..",
     _with(services__grafana__adminPasswordFile="/etc/grafana/secrets/.."),
     f"{PROJECT}:services.grafana.adminPasswordFile: Value error, must live under /etc/grafana/secrets/"),
    ("a secret pasted into a file field", _with(**{RECEIVER: {"default": {"slack": [
        {"apiUrlFile": f"https://hooks.slack.com/services/{PLANTED}", "channel": "#a"}]}}}),
     f"{PROJECT}:alerting.receivers.default.slack.0.apiUrlFile: Value error, must be the absolute path"),
    # YAML itself: size, aliases, anchors, merges, duplicates, depth; errors by line and column only.
    ("a YAML syntax error on a line holding a secret",
     _raw(f"  medianest-observability:runbookBaseUrl: [{PLANTED}"),
     "not valid YAML at line"),
    ("a billion-laughs alias bomb", _raw(BILLION_LAUGHS), "anchors (&name) are not allowed at line 4, column 14"),
    ("an alias to an undefined anchor", _raw("  medianest-observability:compression: *dev"),
     "aliases (*name) are not allowed at line 3, column 40"),
    ("a merge key", _raw("  medianest-observability:kubernetes: {<<: {namespace: x}}"),
     "merge keys (<<) are not allowed at line 3, column 40"),
    ("a duplicate key overriding the first",
     SHIPPED.replace("medianest-observability:target: docker",
                     "medianest-observability:target: docker\n  medianest-observability:target: kubernetes"),
     "a key is repeated in this mapping at line 6, column 3"),
    ("a file over 1 MiB", SHIPPED + "# " + "x" * (1024 * 1024) + "\n", "larger than 1 MiB: not a stack file"),
    ("nesting 200 levels deep", _raw("  medianest-observability:addresses: " + "[" * 200 + "]" * 200),
     "nested deeper than 32 levels at line 3"),
    ("an integer of 5000 digits", _raw("  medianest-observability:kubernetes: {version: " + "9" * 5000 + "}"),
     "a value that cannot be read at line 3, column 49"),
    ("a Python object tag",
     _raw(f"  medianest-observability:grafana: !!python/object/apply:os.system ['{PLANTED}']"),
     "not valid YAML at line 3, column 36"),
    ("a NUL byte in the file", _raw(f"  medianest-observability:grafana: x\0{PLANTED}"),
     "a character YAML does not allow at line 3, column 37"),
    ("bytes that are not UTF-8",
     _raw(f"  medianest-observability:grafana: x\udcff{PLANTED}").encode("utf-8", "surrogateescape"),
     "not UTF-8 text at line 3, column 37"),
    ("two YAML documents", SHIPPED + "---\nconfig: {}\n", "not valid YAML at line"),
    ("a list at the root", "- config\n- " + PLANTED + "\n", "expected a mapping with a `config:` mapping"),
    ("config as a list", "config:\n  - " + PLANTED + "\n", "expected a mapping with a `config:` mapping"),
    # Numbers: finite and bounded.
    ("an infinite latency threshold", _with(thresholds__responseTimeP95Seconds=float("inf")),
     f"{PROJECT}:thresholds.responseTimeP95Seconds: Input should be less than or equal to 3600 (got inf)"),
    ("a NaN ratio", _with(thresholds__errorRatio=float("nan")),
     f"{PROJECT}:thresholds.errorRatio: Input should be greater than 0 (got nan)"),
    ("a latency threshold past the histogram", _with(thresholds__responseTimeP95Seconds=7),
     f"{PROJECT}:thresholds.responseTimeP95Seconds: Value error, must lie within the buckets"),
    ("a connection threshold of 10^30", _with(thresholds__databaseConnections=10**30),
     f"{PROJECT}:thresholds.databaseConnections: Input should be less than or equal to 100000 (got "),
    ("infinite cpus", _with(services__prometheus__cpus=float("inf")),
     f"{PROJECT}:services.prometheus.cpus: Input should be less than or equal to 256 (got inf)"),
    ("negative cpus", _with(services__prometheus__cpus=-1),
     f"{PROJECT}:services.prometheus.cpus: Input should be greater than or equal to 0.01 (got -1)"),
    ("cpus as a boolean", _with(services__prometheus__cpus=True),
     f"{PROJECT}:services.prometheus.cpus: Value error, must be a number, not true or false (got True)"),
    ("memory of 99999999999999999999999Gi", _with(services__prometheus__memory="99999999999999999999999Gi"),
     f"{PROJECT}:services.prometheus.memory: Value error, must be between 6Mi and 1Ti "
     "(got '99999999999999999999999Gi')"),
    ("a volume of 200Ti", _with(services__loki__volumeSize="200Ti"),
     f"{PROJECT}:services.loki.volumeSize: Value error, must be between 1Mi and 100Ti (got '200Ti')"),
    ("a retention size of 5000PB", _with(services__prometheus__retentionSize="5000PB"),
     f"{PROJECT}:services.prometheus.retentionSize: Value error, must be between 1MB and 100TB"),
    ("a retention of 1000 years", _with(services__prometheus__retentionTime="1000y"),
     f"{PROJECT}:services.prometheus.retentionTime: Value error, must be between 1h and 10y (got '1000y')"),
    ("a negative duration", _with(services__prometheus__scrapeInterval="-30s"),
     f"{PROJECT}:services.prometheus.scrapeInterval: Value error, invalid duration '-30s'"),
    ("a zero scrape interval", _with(services__prometheus__scrapeInterval="0s"),
     f"{PROJECT}:services.prometheus.scrapeInterval: Value error, must be longer than 0s"),
    ("a thousand replicas", _with(services__alertmanager__replicas=1000),
     f"{PROJECT}:services.alertmanager.replicas: Input should be less than or equal to 7 (got 1000)"),
    ("a published port given as true", _with(services__grafana__publish=True),
     f"{PROJECT}:services.grafana.publish: Input should be a valid integer (got True)"),
    ("a scrape target on port 70000", _with(backend__targets=["host.docker.internal:70000"]),
     f"{PROJECT}:backend.targets.0: Value error, the port must be between 1 and 65535 (value hidden)"),
    # Shapes, types and text.
    ("an unknown key holding a secret", _with(services__grafana__adminPassword=PLANTED),
     f"{PROJECT}:services.grafana.adminPassword: unknown key; valid keys here: "),
    ("a secret where a number belongs", _with(thresholds__errorRatio=PLANTED),
     f"{PROJECT}:thresholds.errorRatio: Input should be a valid number, unable to parse string as a number "
     "(value hidden)"),
    ("a secret where a section belongs", _with(thresholds=PLANTED),
     f"{PROJECT}:thresholds: Input should be a valid dictionary or instance of Thresholds (value hidden)"),
    ("a string of 5000 characters", _with(environment="d" * 5000),
     f"{PROJECT}:environment: longer than 4096 characters (value hidden)"),
    ("a NUL character in a value", _with(environment=f"dev\0{PLANTED}"),
     f"{PROJECT}:environment: contains control or invisible formatting characters (value hidden)"),
    ("a bidirectional override in a value", _with(jobs__backend="medianest\u202ekcab"),
     f"{PROJECT}:jobs.backend: contains control or invisible formatting characters (value hidden)"),
    ("a key with a newline", _with(services__prometheus={"mem\nory": "2Gi"}),
     f"{PROJECT}:services.prometheus: a key longer than 256 characters or with control characters (hidden)"),
    ("a date where a string belongs", _raw("  medianest-observability:kubernetes: {storageClass: 2024-01-01}"),
     f"{PROJECT}:kubernetes.storageClass: must be a string, number, boolean, list or mapping (value hidden)"),
    ("a list of 30000 targets", _with(backend__targets=["a:1"] * 30000),
     "more than 20000 values: not a stack configuration"),
    ("values nested 20 levels deep", _with(kubernetes__ingress__annotations=_nested(20)),
     "nested deeper than 16 levels"),
    ("a PromQL injection in a job name", _with(jobs__backend='x"} or vector(1) #'),
     f"{PROJECT}:jobs.backend: String should match pattern"),
    ("an Alertmanager template in an email address", _with(**{RECEIVER: {"tickets": {"email": [
        {"to": "{{ .CommonLabels }}@x", "from": "a@b.c", "smarthost": "smtp:587"}]}}}),
     f"{PROJECT}:alerting.receivers.tickets.email.0.to: String should match pattern"),
    ("an API server CIDR that is not one", _with(kubernetes__apiServerCidrs=[PLANTED]),
     f"{PROJECT}:kubernetes.apiServerCidrs.0: Value error, must be a CIDR such as 10.0.0.0/8 (value hidden)"),
    ("a host path climbing out", _with(services__alloy__logDirectory="/var/log/../../etc"),
     f"{PROJECT}:services.alloy.logDirectory: Value error, must be an absolute path"),
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary project root for the CLI; every write of a file tree is recorded."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "Pulumi.prod.yaml", root / "Pulumi.prod.yaml")
    monkeypatch.setattr("stack.cli.ROOT", root)
    return root


def _no_writes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    written: list[Any] = []
    monkeypatch.setattr("stack.output.write_tree", lambda *a, **k: written.append(a))
    monkeypatch.setattr("stack.cli.write_tree", lambda *a, **k: written.append(a), raising=False)
    return written


def test_there_are_thirty_cases_or_more() -> None:
    assert len(CASES) >= 30
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_stack_file_is_refused_on_one_line(project: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                                   text: str | bytes, expected: str) -> None:
    stack_file = project / FILE
    if isinstance(text, bytes):
        stack_file.write_bytes(text)
    else:
        stack_file.write_text(text)
    before = sorted(p.name for p in project.iterdir())
    written = _no_writes(monkeypatch)

    assert cli.main(["check", "--stack", "dev"]) == cli.BAD_INPUT == 2

    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"error: {FILE}: "), lines[0]
    assert expected in lines[0]
    assert len(lines[0]) < 600
    assert PLANTED not in captured.out + captured.err
    assert captured.out == ""
    assert written == [] and sorted(p.name for p in project.iterdir()) == before


def test_the_loader_refuses_them_too(project: Path) -> None:
    """The same files through `load_stack` with a root: a ConfigError, the secret never in it."""
    for name, text, expected in CASES:
        (project / FILE).write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(ConfigError) as error:
            load_stack("dev", project)
        assert expected in str(error.value), name
        assert PLANTED not in str(error.value), name


def test_encrypted_secrets_under_secrets_are_accepted(project: Path) -> None:
    text = _with(secrets={"postgres-password": {"secure": "v1:abc"}, "redis-password": {"secure": "v1:def"}})
    (project / FILE).write_text(text)
    assert load_stack("dev", project).environment == "dev"
    (project / FILE).write_text(_with(secrets={"secure": "v1:the-whole-object"}))
    assert load_stack("dev", project).environment == "dev"


def test_the_shipped_stacks_pass(project: Path) -> None:
    assert load_stack("dev").environment == "dev" and load_stack("prod").environment == "prod"


# Errors echo a value only for allowlisted fields, clipped.

def test_values_of_allowlisted_fields_are_echoed_and_clipped() -> None:
    with pytest.raises(ConfigError) as error:
        from_mapping({f"{PROJECT}:environment": "dev", f"{PROJECT}:runbookBaseUrl": "https://r",
                      f"{PROJECT}:services": {"prometheus": {"retentionTime": "9" * 200 + "x"}}}, FILE)
    message = str(error.value)
    assert "services.prometheus.retentionTime: Value error, invalid duration '9999" in message
    assert "9" * 80 not in message


@pytest.mark.parametrize(("section", "values", "key"), [
    ("services", {"grafana": {"image": {"repository": PLANTED.lower(), "tag": "latest"}}},
     "services.grafana.image.tag"),  # an image tag: shown
    ("services", {"loki": {"retentionPeriod": "1h"}}, "services.loki.retentionPeriod"),  # a duration: shown
    ("target", "nomad", "target"),  # an enum: shown
])
def test_safe_fields_show_their_value(section: str, values: Any, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_mapping({f"{PROJECT}:environment": "dev", f"{PROJECT}:runbookBaseUrl": "https://r",
                      f"{PROJECT}:{section}": values}, FILE)
    line = next(line for line in str(error.value).splitlines() if f":{key}:" in line)
    assert "(got " in line and "(value hidden)" not in line


@pytest.mark.parametrize(("section", "values", "key"), [
    ("services", {"redisExporter": {"address": PLANTED}}, "services.redisExporter.address"),
    ("alerting", {"localWebhookUrl": PLANTED}, "alerting.localWebhookUrl"),
    ("services", {"grafana": {"adminPasswordFile": PLANTED}}, "services.grafana.adminPasswordFile"),
    ("kubernetes", {"storageClass": PLANTED}, "kubernetes.storageClass"),
    ("services", {"grafana": {"database": {"type": "postgres", "host": "db:5432", "name": "g",
                                           "user": f"grafana:{PLANTED}"}}}, "services.grafana.database.user"),
    ("thresholds", {"databaseConnections": PLANTED}, "thresholds.databaseConnections"),
])
def test_other_fields_hide_their_value(section: str, values: Any, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_mapping({f"{PROJECT}:environment": "dev", f"{PROJECT}:runbookBaseUrl": "https://r",
                      f"{PROJECT}:{section}": values}, FILE)
    assert f"{FILE}: {PROJECT}:{key}: " in str(error.value)
    assert "(value hidden)" in str(error.value)
    assert PLANTED not in str(error.value) and PLANTED.lower() not in str(error.value)


# Config from the Pulumi program: secret keys.

@pytest.fixture
def pulumi_config(monkeypatch: pytest.MonkeyPatch):
    import pulumi
    from pulumi.runtime import config as runtime_config

    monkeypatch.setattr(pulumi, "get_stack", lambda: "dev")
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_SECRET_KEYS", raising=False)

    def set_config(values: dict[str, Any], secret_keys: list[str]) -> None:
        runtime_config.set_all_config({f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v)
                                       for k, v in values.items()}, [f"{PROJECT}:{k}" for k in secret_keys])

    yield set_config
    runtime_config.set_all_config({}, [])


def _shipped_values() -> dict[str, Any]:
    return {key.partition(":")[2]: value for key, value in BASE["config"].items()}


def test_a_key_set_with_secret_outside_secrets_is_refused(pulumi_config) -> None:
    from stack.config import from_pulumi

    values = _shipped_values()
    values["services"] = {**values["services"], "postgresExporter": {
        "dataSourceUri": f"db:5432/medianest?password={PLANTED}"}}
    pulumi_config(values, ["services"])
    with pytest.raises(ConfigError) as error:
        from_pulumi()
    assert str(error.value).startswith(f"{FILE}: {PROJECT}:services: a Pulumi secret outside secrets")
    assert PLANTED not in str(error.value) and len(str(error.value).splitlines()) == 1


def test_plain_secrets_from_pulumi_are_refused(pulumi_config) -> None:
    from stack.config import from_pulumi

    pulumi_config({**_shipped_values(), "secrets": {"postgres-password": PLANTED}}, [])
    with pytest.raises(ConfigError, match=r"medianest-observability:secrets: holds plain-text values") as error:
        from_pulumi()
    assert PLANTED not in str(error.value)
    pulumi_config({**_shipped_values(), "secrets": {"postgres-password": PLANTED}}, ["secrets"])
    assert from_pulumi().environment == "dev"


def test_secret_names_from_pulumi_are_file_names(pulumi_config) -> None:
    from stack import secrets

    pulumi_config({"secrets": {"../../../proc/self/environ": PLANTED}}, ["secrets"])
    with pytest.raises(ConfigError, match="not a secret file name") as error:
        secrets.configured("dev")
    assert PLANTED not in str(error.value)


# SLO objectives: a `[slo]` problem naming the SLO and the valid range, never an AssertionError.

@pytest.mark.parametrize(("objective", "page", "expected"), [
    ("1.2", True, "1.2 is outside the valid range 93.06 to 99.999"),
    ("50", True, "50 is outside the valid range 93.06 to 99.999"),
    ("93", True, "93 is outside the valid range 93.06 to 99.999"),
    ("50", False, "50 is outside the valid range 66.67 to 99.999"),
    ("99.9999", True, "99.9999 is above 99.999"),
    ("100", True, "100 must be a percentage between 0 and 100 (exclusive)"),
    ("0.999", True, "0.999 looks like a fraction"),
])
def test_an_slo_objective_out_of_range_is_a_problem(objective: str, page: bool, expected: str) -> None:
    slo = slos(load_stack("dev"))[0].model_copy(update={"objective": Decimal(objective), "page": page})
    files, problems = slo_rule_files([slo], "https://r", CATALOG)
    assert files == []
    assert [p.render() for p in problems] == [f"slo {slo.name}: objective: error [slo] {p.message}"
                                               for p in problems]
    assert any(expected in p.message for p in problems), [p.message for p in problems]


def test_an_slo_objective_out_of_range_fails_check_naming_it(project: Path, monkeypatch, capsys) -> None:
    (project / FILE).write_text(SHIPPED)
    shipped = slos

    def broken(config):
        first, *others = shipped(config)
        return (first.model_copy(update={"objective": Decimal(50)}), *others)

    monkeypatch.setattr("rules.slos.slos", broken)  # the module stack.bundle builds the SLOs from
    _no_writes(monkeypatch)
    assert cli.main(["check", "--stack", "dev"]) == cli.PROBLEMS
    out = capsys.readouterr().out
    assert ("[dev] slo api-availability: objective: error [slo] 50 is outside the valid range 93.06 to 99.999"
            in out)
