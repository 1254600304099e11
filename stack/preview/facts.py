"""What `python -m stack export` writes beside the rendered files (under `.preview/`), for the
parts of a change the files alone do not show: the static check problems (a tree with errors is
still exported), the service specs (images, resources, ports... of every environment, Docker
included) and the SLOs with their detection-time table."""

from __future__ import annotations

import hashlib
from typing import Any

from rules.conventions import duration_seconds
from rules.slo import report as slo_report
from rules.slo.windows import burn_windows
from rules.slos import slos as slo_definitions
from stack.bundle import Bundle
from stack.dump import dump_json
from stack.preview.model import FACTS_DIR
from stack.services.spec import ServiceSpec


def problems(bundle: Bundle) -> list[dict[str, Any]]:
    return [{"source": p.source, "subject": p.subject, "check": p.check, "severity": p.severity.name.lower(),
             "message": p.message, "text": p.render()} for p in bundle.problems()]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def service(spec: ServiceSpec) -> dict[str, Any]:
    """A spec as data; files by content hash (their diffs are the other sections' business),
    secrets by name only."""
    return {
        "image": spec.image.reference,
        "user": spec.user,
        "replicas": spec.replicas,
        "args": list(spec.args),
        "env": dict(sorted(spec.env.items())),
        "ports": [{"name": p.name, "port": p.container_port, "protocol": p.protocol, "published": p.host_port}
                  for p in spec.ports],
        "memory_limit_bytes": spec.resources.memory_limit_bytes,
        "cpu_limit": spec.resources.cpu_limit,
        "volumes": [{"name": v.name, "path": v.path, "size": v.size} for v in spec.volumes],
        "host_mounts": [{"host_path": m.host_path, "path": m.path} for m in spec.host_mounts],
        "host_pid": spec.host_pid,
        "read_only_root": spec.read_only_root,
        "groups": list(spec.groups),
        "files": {f.path: _sha(f.content) for f in sorted(spec.files, key=lambda f: f.path)},
        "secrets": sorted(s.name for s in spec.secrets),
    }


def services(bundle: Bundle) -> dict[str, Any]:
    return {"target": bundle.config.target, "services": {spec.name: service(spec) for spec in bundle.services}}


def slos(bundle: Bundle) -> list[dict[str, Any]]:
    """Each SLO that got rules: objective, windows, tiers and the detection-time table."""
    built = {f.name for f in bundle.rule_files}
    found = []
    for slo in slo_definitions(bundle.config):
        if f"slo-{slo.name}" not in built:
            continue
        found.append({
            "name": slo.name,
            "objective": str(slo.objective),
            "period": slo.period,
            "page": slo.page,
            "ticket": slo.ticket,
            "for": slo.for_,
            "windows": [{"tier": w.tier, "long": w.long, "short": w.short, "factor": str(w.factor)}
                        for w in burn_windows(slo.period)],
            "detection": [{"tier": c.tier, "error_ratio": c.error_ratio, "seconds": c.seconds}
                          for c in slo_report.table([slo])],
            "period_seconds": duration_seconds(slo.period),
        })
    return found


def files(bundle: Bundle) -> dict[str, str]:
    """The facts files, by their path in the exported tree."""
    return {
        f"{FACTS_DIR}/problems.json": dump_json(problems(bundle)),
        f"{FACTS_DIR}/services.json": dump_json(services(bundle)),
        f"{FACTS_DIR}/slos.json": dump_json(slos(bundle)),
    }
