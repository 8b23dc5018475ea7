"""The reports' arithmetic: the buckets of times, percentiles on them, and a period cut where
the roll-ups can answer."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from app.reports.rollup import Spans, spans
from app.reports.tally import at_most, bucket, percentile

T = datetime(2026, 11, 10, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("seconds", "tenths"),
    [
        (0, 0),
        (-1, 0),
        (0.3, 3),  # 3.0000000000000004 tenths in binary
        (0.31, 4),
        (10, 100),
        (10.01, 110),
        (20, 200),
        (20.5, 210),
        (300, 3000),
        (301, 3100),
        (1800, 18000),
        (1801, 18600),
        (7200, 72000),
        (7201, 78000),
    ],
)
def test_a_time_counts_in_the_bucket_of_its_upper_bound(seconds: float, tenths: int) -> None:
    assert bucket(seconds) == tenths


def test_percentiles_are_nearest_rank_on_the_buckets() -> None:
    waits = Counter(bucket(s) for s in (5, 10, 15, 25, 30))
    assert (percentile(waits, 0.5), percentile(waits, 0.9)) == (15, 30)
    assert percentile(Counter(), 0.5) is None
    assert percentile(Counter(bucket(s) for s in range(1, 11)), 0.9) == 9
    # Off the grid, the bucket's bound: 12.25 s is in the bucket up to 13 s.
    assert percentile(Counter({bucket(12.25): 1}), 0.5) == 13


def test_the_service_level_is_exact_on_the_grid() -> None:
    waits = Counter(bucket(s) for s in (19.99, 20, 20.01, 3, 100))
    assert at_most(waits, 20) == 3
    assert at_most(waits, 2) == 0


@pytest.mark.parametrize(
    ("start", "end", "cut"),
    [
        # Within one hour: all call by call.
        (T + 10 * H + timedelta(minutes=5), T + 10 * H + timedelta(minutes=40),
         Spans(edges=((T + 10 * H + timedelta(minutes=5), T + 10 * H + timedelta(minutes=40)),),
               whole=None, hours=(), days=None)),
        # Whole hours of one day.
        (T + 9 * H, T + 17 * H,
         Spans(edges=(), whole=(T + 9 * H, T + 17 * H), hours=((T + 9 * H, T + 17 * H),),
               days=None)),
        # A whole day.
        (T, T + D, Spans(edges=(), whole=(T, T + D), hours=(), days=(T, T + D))),
        # Ragged edges around two whole days.
        (T - 90 * timedelta(minutes=1), T + 2 * D + 14 * H + timedelta(minutes=15),
         Spans(edges=((T - 90 * timedelta(minutes=1), T - H),
                      (T + 2 * D + 14 * H, T + 2 * D + 14 * H + timedelta(minutes=15))),
               whole=(T - H, T + 2 * D + 14 * H),
               hours=((T - H, T), (T + 2 * D, T + 2 * D + 14 * H)),
               days=(T, T + 2 * D))),
    ],
)  # fmt: skip
def test_a_period_is_cut_into_edges_whole_hours_and_whole_days(
    start: datetime, end: datetime, cut: Spans
) -> None:
    assert spans(start, end) == cut
