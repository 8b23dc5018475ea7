"""The metrics' own bounds: escalation reasons past the cap share one series, and each app's
registry is its own."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from app.metrics.service import MAX_REASONS, OTHER, Metrics, Snapshot


def _escalations(metrics: Metrics) -> dict[str, float]:
    text = metrics.render(Snapshot()).decode()
    return {
        s.labels["reason"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "tellonce_escalations_total"
    }


def test_reasons_past_the_cap_are_counted_as_other() -> None:
    metrics = Metrics()
    for i in range(MAX_REASONS + 10):
        metrics.escalated(f"reason_{i}")
    metrics.escalated("reason_0")
    counts = _escalations(metrics)
    assert len(counts) == MAX_REASONS + 1
    assert counts[OTHER] == 10
    assert counts["reason_0"] == 2


def test_each_app_counts_apart() -> None:
    one, two = Metrics(), Metrics()
    one.escalated("unscripted")
    assert _escalations(one) == {"unscripted": 1}
    assert _escalations(two) == {}
