"""The reports' arithmetic: the buckets of times, percentiles on them, and a period cut where
the roll-ups can answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.reports.rollup import Spans, spans
from app.reports.tally import BOUNDS, Tally, at_most, bucket, percentile

T = datetime(2026, 11, 10, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("seconds", "bound"),
    [
        (0, 1),
        (-1, 1),
        (0.3, 1),
        (1, 1),
        (1.01, 2),
        (20, 20),
        (20.5, 25),
        (60, 60),
        (61, 70),
        (299, 300),
        (301, 360),
        (900, 900),
        (901, 1200),
        (7200, 7200),
        (7201, 10800),
        (86400, 86400),
        (10**7, 86400),  # beyond a day: the last bucket
    ],
)
def test_a_time_counts_in_the_bucket_of_its_upper_bound(seconds: float, bound: int) -> None:
    assert BOUNDS[bucket(seconds)] == bound


def histogram(*seconds: float) -> list[int]:
    counts = [0] * len(BOUNDS)
    for s in seconds:
        counts[bucket(s)] += 1
    return counts


def test_percentiles_are_nearest_rank_on_the_buckets() -> None:
    waits = histogram(5, 10, 15, 25, 30)
    assert (percentile(waits, 0.5), percentile(waits, 0.9)) == (15, 30)
    assert percentile(histogram(), 0.5) is None
    assert percentile(histogram(*range(1, 11)), 0.9) == 9
    # Off the grid, the bucket's bound: 21 s is in the bucket up to 25 s.
    assert percentile(histogram(21), 0.5) == 25


def test_the_service_level_is_exact_on_the_grid() -> None:
    waits = histogram(19.99, 20, 20.01, 3, 100)
    assert at_most(waits, 20) == 3
    assert at_most(waits, 2) == 0


def test_a_stored_tally_adds_up_as_the_calls_would() -> None:
    one, two = Tally(), Tally()
    one.add_survey(5, True)
    two.add_survey(3, False)
    both = Tally()
    both.merge_json(one.to_json())
    both.merge_json(two.to_json())
    both.merge_json({})  # a row made and not yet written to
    assert (both["csat_count"], both["csat_sum"], both["had_to_repeat"]) == (2, 8, 1)


M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("start", "end", "cut"),
    [
        # Within one hour: all call by call.
        (T + 10 * H + 5 * M, T + 10 * H + 40 * M,
         Spans(edges=((T + 10 * H + 5 * M, T + 10 * H + 40 * M),), whole=None)),
        # Eight whole hours of one day: hour by hour.
        (T + 9 * H, T + 17 * H,
         Spans(edges=(), whole=(T + 9 * H, T + 17 * H), hours=((T + 9 * H, T + 17 * H),))),
        # Twenty hours of one day: the day, less the other four.
        (T + 2 * H, T + 22 * H,
         Spans(edges=(), whole=(T + 2 * H, T + 22 * H), days=((T, T + D),),
               outside=((T, T + 2 * H), (T + 22 * H, T + D)))),
        # A whole day.
        (T, T + D, Spans(edges=(), whole=(T, T + D), days=((T, T + D),))),
        # Ragged ends: part-hours call by call; 22 hours of the first day (the day less two),
        # two whole days, and 14 hours of the last (the day less ten) as one span of days.
        (T + 90 * M, T + 3 * D + 14 * H + 15 * M,
         Spans(edges=((T + 90 * M, T + 2 * H), (T + 3 * D + 14 * H, T + 3 * D + 14 * H + 15 * M)),
               whole=(T + 2 * H, T + 3 * D + 14 * H),
               days=((T, T + 4 * D),),
               outside=((T, T + 2 * H), (T + 3 * D + 14 * H, T + 4 * D)))),
        # Four hours of the first day and three of the last, hour by hour, around a whole one.
        (T + 20 * H, T + 2 * D + 3 * H,
         Spans(edges=(), whole=(T + 20 * H, T + 2 * D + 3 * H),
               hours=((T + 20 * H, T + D), (T + 2 * D, T + 2 * D + 3 * H)),
               days=((T + D, T + 2 * D),))),
    ],
)  # fmt: skip
def test_a_period_is_cut_into_edges_hours_and_days(
    start: datetime, end: datetime, cut: Spans
) -> None:
    assert spans(start, end) == cut
