"""The port of Prometheus's template functions formats as Go does (values from Go's output)."""

import pytest

from rules.humanize import humanize, humanize1024, humanize_duration, humanize_percentage, value

CASES = [
    (value, 85.0, "85"), (value, 0.1, "0.1"), (value, 1e6, "1e+06"), (value, 123456.0, "123456"),
    (value, 1.5e-05, "1.5e-05"), (humanize, 1234.0, "1.234k"), (humanize, 0.4, "400m"),
    (humanize, 1.0, "1"), (humanize1024, 1.5 * 1024**3, "1.5Gi"), (humanize1024, 1048576.0, "1Mi"),
    (humanize_percentage, 0.1, "10%"), (humanize_percentage, 0.045, "4.5%"),
    (humanize_duration, 4.85, "4.85s"), (humanize_duration, 0.0485, "48.5ms"),
    (humanize_duration, 90.0, "1m 30s"), (humanize_duration, 90061.0, "1d 1h 1m 1s"),
    (humanize_duration, 0.0, "0s"),
]


@pytest.mark.parametrize(("function", "number", "text"), CASES,
                         ids=[f"{f.__name__}({n})" for f, n, _ in CASES])
def test_formats_like_go(function, number, text) -> None:
    assert function(number) == text
