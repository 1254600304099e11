"""MediaNest's service level objectives (observability strategy §2.2 and §5.1), over 30 days."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from rules.slo.spec import SLO, LatencySLI, RatioSLI

if TYPE_CHECKING:
    from stack.config import StackConfig

CRITICAL_ENDPOINTS = ("/api/v1/auth/login", "/api/v1/media/upload", "/api/v1/media/download")
PERIOD = "30d"


def slos(config: StackConfig) -> tuple[SLO, ...]:
    job = f'job="{config.jobs.backend}"'
    http = "medianest_http_requests_total"
    latency = "medianest_http_request_duration_seconds"
    critical = f'{job},endpoint=~"{"|".join(CRITICAL_ENDPOINTS)}"'
    # The sandbox alone compresses time: the same SLOs over a shorter period.
    period = config.compression.slo_period or PERIOD
    return (
        SLO(
            name="api-availability", service="medianest", objective=Decimal("99.9"), period=period,
            description="of backend requests are not 5xx",
            sli=RatioSLI(
                total=f"{http}{{{job}}}",
                errors=f'{http}{{{job},status_code=~"5.."}}',
                good_example={"method": "GET", "endpoint": "/api/v1/media", "status_code": "200"},
                bad_example={"method": "GET", "endpoint": "/api/v1/media", "status_code": "503"},
            ),
        ),
        SLO(
            name="api-latency", service="medianest", objective=Decimal("95"), period=period,
            description="of requests to the critical endpoints complete within 1s",
            sli=LatencySLI(histogram=latency, matchers=critical, threshold_seconds=1,
                           example={"method": "POST", "endpoint": CRITICAL_ENDPOINTS[0], "status_code": "200"}),
        ),
        SLO(
            name="api-latency-tail", service="medianest", objective=Decimal("99"), period=period,
            description="of requests to the critical endpoints complete within 2s",
            sli=LatencySLI(histogram=latency, matchers=critical, threshold_seconds=2,
                           example={"method": "POST", "endpoint": CRITICAL_ENDPOINTS[1], "status_code": "200"}),
        ),
        SLO(
            name="media-upload-success", service="business", objective=Decimal("95"), period=period,
            description="of media upload requests succeed",
            sli=RatioSLI(
                total=f'medianest_media_requests_total{{{job},type="upload"}}',
                good=f'medianest_media_requests_total{{{job},type="upload",status="success"}}',
                good_example={"status": "success", "source": "web"},
                bad_example={"status": "failed", "source": "web"},
            ),
        ),
    )
