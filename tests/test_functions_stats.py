"""The runtime's per-function numbers as Prometheus reads them (``/metrics``)."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY, generate_latest

from triggerfish.functions.stats import STATS


def _lines(name: str) -> list[str]:
    return [line for line in generate_latest(REGISTRY).decode().splitlines() if f'function="{name}"' in line]


def test_invocations_and_durations_are_prometheus_series_from_their_first_invocation_on() -> None:
    name = f"f-{uuid.uuid4().hex[:8]}"
    assert _lines(name) == []
    STATS.throttled(name)
    assert _lines(name)[0] == f'triggerfish_function_invocations_total{{function="{name}",outcome="throttled"}} 1.0'
    assert not any("duration" in line for line in _lines(name))  # nothing ran yet
    for ms, error in ((12.0, False), (5.0, False), (1200.0, True), (10.0, False)):
        STATS.invoked(name, ms, error=error)
    lines = _lines(name)
    assert f'triggerfish_function_invocations_total{{function="{name}",outcome="ok"}} 3.0' in lines
    assert f'triggerfish_function_invocations_total{{function="{name}",outcome="error"}} 1.0' in lines
    created = [line for line in lines if line.startswith("triggerfish_function_invocations_created")]
    assert len(created) == 3
    buckets = {line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
               for line in lines if line.startswith("triggerfish_function_duration_seconds_bucket")}
    # cumulative, each duration counted in the first bucket at or above it (10 ms is in le="0.01")
    assert (buckets["0.005"], buckets["0.01"], buckets["0.025"], buckets["1.0"], buckets["2.5"], buckets["+Inf"]) == (
        1.0, 2.0, 3.0, 3.0, 4.0, 4.0)
    assert f'triggerfish_function_duration_seconds_count{{function="{name}"}} 4.0' in lines
    total = next(line for line in lines if line.startswith("triggerfish_function_duration_seconds_sum"))
    assert abs(float(total.rsplit(" ", 1)[1]) - 1.227) < 1e-9
    assert any(line.startswith("triggerfish_function_duration_seconds_created") for line in lines)
    summary = STATS.summary(name)
    assert (summary.invocations, summary.errors, summary.throttles, summary.max_ms) == (4, 1, 1, 1200.0)
