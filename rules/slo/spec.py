"""What an SLO says. Validation (validate.py) and generation (generate.py) live apart."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RatioSLI(_Frozen):
    """Bad (or good) events over all events, from counters.

    Selectors are PromQL vector selectors. `good_example` and `bad_example` are label values
    of one good and one bad event: the generated promtool scenarios emit series with them,
    and validation proves they fall on the right side of the selectors.
    """

    kind: Literal["ratio"] = "ratio"
    total: str
    errors: str | None = None
    good: str | None = None
    good_example: dict[str, str]
    bad_example: dict[str, str]


class LatencySLI(_Frozen):
    """Share of requests slower than `threshold_seconds`, a bucket bound of `histogram`."""

    kind: Literal["latency"] = "latency"
    histogram: str
    matchers: str = ""  # PromQL matchers without braces, e.g. 'job="x",endpoint=~"/a|/b"'
    threshold_seconds: float = Field(allow_inf_nan=False)
    example: dict[str, str] = Field(default_factory=dict)


class GaugeSLI(_Frozen):
    """A boolean gauge: 1 while good, 0 while bad (e.g. a probe's success)."""

    kind: Literal["gauge"] = "gauge"
    selector: str
    example: dict[str, str] = Field(default_factory=dict)


SLI = Annotated[RatioSLI | LatencySLI | GaugeSLI, Field(discriminator="kind")]


class SLO(_Frozen):
    name: str
    service: str
    description: str
    # In percent, kept exact: 99.9 gives an error budget of exactly 0.001. Finite (pydantic refuses
    # NaN and infinities); its valid range depends on the alert windows, checked by validate.py.
    objective: Decimal = Field(allow_inf_nan=False)
    sli: SLI
    period: str = "30d"
    # Labels the SLO is computed per (each value its own budget); none: one SLO overall.
    grouping: tuple[str, ...] = ()
    # Below this many events per second over a long window, a burn rate means little.
    min_events_per_second: float | None = Field(default=None, allow_inf_nan=False)
    page: bool = True
    ticket: bool = True
    for_: str | None = None

    @property
    def error_budget(self) -> Decimal:
        return (Decimal(100) - self.objective) / Decimal(100)

    @property
    def objective_ratio(self) -> Decimal:
        return self.objective / Decimal(100)
