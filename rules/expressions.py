"""PromQL building blocks shared by the rule definitions."""

from __future__ import annotations


def target_down(job: str, exporter_up: str | None = None) -> str:
    """Down when the target's scrape fails, when no target of the job is scraped at all (a renamed
    job, a broken service discovery) and, for an exporter, when it cannot reach its service."""
    sel = f'job="{job}"'
    expr = f"up{{{sel}}} == 0 or absent(up{{{sel}}})"
    return f"{exporter_up}{{{sel}}} == 0 or {expr}" if exporter_up else expr


def down_description(what: str, duration: str) -> str:
    return ("{{ if $labels.instance }}" + what + " cannot be reached through {{ $labels.instance }}"
            "{{ else }}No {{ $labels.job }} target is being scraped{{ end }} for more than "
            + duration + ".")


def or_zero(errors: str, total: str) -> str:
    """Bad events, or 0 where the total has series but no bad event was ever counted: without
    it, a healthy service with no 5xx yet has no error ratio at all instead of 0."""
    return f"({errors} or {total} * 0)"


def loss_ratio(failed: str, succeeded: str, by: str, sel: str) -> str:
    """Share of items that failed, out of all attempted (the counters count them apart)."""
    failed_rate = f"sum by ({by}) (rate({failed}{{{sel}}}[5m]))"
    return f"{failed_rate} / (sum by ({by}) (rate({succeeded}{{{sel}}}[5m])) + {failed_rate})"


# cAdvisor's (on Docker, and inside the kubelet on Kubernetes): a container's working set over its
# memory limit (none without a limit: 0 is filtered out), and its share of throttled CFS periods.
def memory_limit_used(by: str, sel: str) -> str:
    return (f"max by ({by}) (container_memory_working_set_bytes{{{sel}}}) / "
            f"max by ({by}) (container_spec_memory_limit_bytes{{{sel}}} > 0)")


def cpu_throttled(by: str, sel: str, window: str) -> str:
    return (f"sum by ({by}) (rate(container_cpu_cfs_throttled_periods_total{{{sel}}}[{window}])) / "
            f"sum by ({by}) (rate(container_cpu_cfs_periods_total{{{sel}}}[{window}]))")

