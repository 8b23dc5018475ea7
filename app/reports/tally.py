"""What calls add up to: the experience report's figures from one call, from many, from stored
roll-ups; the same arithmetic for every source, so a figure never depends on where it was read.

Times are kept as histograms, not lists: a value counts in the bucket of its upper bound, a
tenth of a second wide under 10 s, a second to 5 min, 10 s to 30 min, a minute to 2 h, ten
minutes beyond. A percentile is the upper bound of the bucket that holds it (nearest rank), and
the service level counts the waits whose bucket is within it: exact for any threshold on that
grid (a whole number of seconds up to 5 minutes), as the default 20 s is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# (the largest upper bound in tenths of a second, the step) of each stretch of the grid.
_GRID = ((100, 1), (3000, 10), (18000, 100), (72000, 600))
_LAST_STEP = 6000

SENTIMENTS = ("positive", "neutral", "negative")
# The additive figures; the histograms and the escalation reasons are kept beside them.
SUMS = (
    "calls",
    "answered",
    "abandoned",
    "escalations",
    "transfers",
    "asked_again",
    "csat_count",
    "csat_sum",
    *(f"csat_{score}" for score in range(1, 6)),
    "had_to_repeat",
    *(f"sentiment_{mood}" for mood in SENTIMENTS),
    "repeat_calls",
)


def bucket(seconds: float) -> int:
    """The upper bound, in tenths of a second, of the bucket that holds this many seconds."""
    # Rounded first, so that 0.3 s (3.0000000000000004 tenths in binary) is the bucket 3.
    tenths = max(0.0, round(seconds * 10, 6))
    for bound, step in _GRID:
        if tenths <= bound:
            return math.ceil(tenths / step) * step
    return math.ceil(tenths / _LAST_STEP) * _LAST_STEP


def percentile(histogram: Mapping[int, int], p: float) -> float | None:
    """The nearest-rank percentile in seconds: the smallest bucket bound that at least p of the
    values do not exceed (None of no values)."""
    n = sum(histogram.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(p * n))
    seen = 0
    for bound in sorted(histogram):
        seen += histogram[bound]
        if seen >= rank:
            return bound / 10
    raise AssertionError("unreachable: the ranks add up to n")


def at_most(histogram: Mapping[int, int], seconds: float) -> int:
    """How many values are at most this many seconds (exact on the grid)."""
    limit = round(seconds * 10, 6)
    return sum(count for bound, count in histogram.items() if bound <= limit)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the reports read of one call handed off to the centre."""

    queue: str | None
    agent_id: int | None
    first_queued_at: datetime
    final: bool
    abandoned: bool
    first_connected_at: datetime | None
    ended_at: datetime | None
    waited_s: float
    escalation_reason: str | None
    csat: int | None
    had_to_repeat: bool | None
    sentiment: str | None
    transfers: int
    asked_again: int
    # The caller ("c<customer id>", else "n<number>") when the call repeats an earlier one.
    repeat_caller: str | None


@dataclass
class Tally:
    sums: Counter[str] = field(default_factory=Counter)
    waits: Counter[int] = field(default_factory=Counter)
    handles: Counter[int] = field(default_factory=Counter)
    abandons: Counter[int] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    # Callers with a repeat call, when known one by one (calls read as they are); roll-ups keep
    # only the count of repeat calls, and the report counts their callers in the database.
    repeat_callers: set[str] = field(default_factory=set)

    def add_call(self, call: CallFacts) -> None:
        s = self.sums
        s["calls"] += 1
        answered = call.first_connected_at is not None
        if answered:
            s["answered"] += 1
            self.waits[bucket(call.waited_s)] += 1
            if call.final and not call.abandoned and call.ended_at is not None:
                assert call.first_connected_at is not None
                handle = (call.ended_at - call.first_connected_at).total_seconds()
                self.handles[bucket(handle)] += 1
        if call.abandoned:
            s["abandoned"] += 1
            if not answered:
                self.abandons[bucket(call.waited_s)] += 1
        if call.escalation_reason is not None:
            s["escalations"] += 1
            self.reasons[call.escalation_reason] += 1
        s["transfers"] += call.transfers
        s["asked_again"] += call.asked_again
        if call.sentiment in SENTIMENTS:
            s[f"sentiment_{call.sentiment}"] += 1
        self.add_survey(call.csat, call.had_to_repeat)
        if call.repeat_caller is not None:
            s["repeat_calls"] += 1
            self.repeat_callers.add(call.repeat_caller)

    def add_survey(self, csat: int | None, had_to_repeat: bool | None) -> None:
        if csat is not None:
            self.sums["csat_count"] += 1
            self.sums["csat_sum"] += csat
            self.sums[f"csat_{csat}"] += 1
        if had_to_repeat:
            self.sums["had_to_repeat"] += 1

    def merge(self, other: Tally) -> None:
        self.sums.update(other.sums)
        self.waits.update(other.waits)
        self.handles.update(other.handles)
        self.abandons.update(other.abandons)
        self.reasons.update(other.reasons)
        self.repeat_callers |= other.repeat_callers

    # A roll-up row stores this (app/reports/models.py, ReportRollup.tally): JSON keys are text.
    def to_json(self) -> dict[str, Any]:
        def plain(counter: Counter[Any]) -> dict[str, int]:
            return {str(k): v for k, v in counter.items() if v}

        return {
            "sums": plain(self.sums),
            "waits": plain(self.waits),
            "handles": plain(self.handles),
            "abandons": plain(self.abandons),
            "reasons": plain(self.reasons),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        def ints(name: str) -> Counter[int]:
            return Counter({int(k): v for k, v in data.get(name, {}).items()})

        return cls(
            sums=Counter(data.get("sums", {})),
            waits=ints("waits"),
            handles=ints("handles"),
            abandons=ints("abandons"),
            reasons=Counter(data.get("reasons", {})),
        )

    def figures(self, *, service_level_s: float, repeat_callers: int) -> dict[str, Any]:
        s = self.sums
        calls = s["calls"]
        answered_or_abandoned = s["answered"] + s["abandoned"]
        return {
            "calls": calls,
            "answered": s["answered"],
            "abandoned": s["abandoned"],
            "abandon_rate": _rate(s["abandoned"], calls),
            "abandon_p50_s": percentile(self.abandons, 0.5),
            # Of the calls answered or abandoned: a call still waiting has not had its chance.
            "service_level": _rate(at_most(self.waits, service_level_s), answered_or_abandoned),
            "wait_p50_s": percentile(self.waits, 0.5),
            "wait_p90_s": percentile(self.waits, 0.9),
            "handle_p50_s": percentile(self.handles, 0.5),
            "transfers": s["transfers"],
            "transfers_per_100": _per_100(s["transfers"], calls),
            "escalations": s["escalations"],
            "escalations_per_100": _per_100(s["escalations"], calls),
            "escalation_reasons": dict(self.reasons.most_common()),
            "csat_mean": round(s["csat_sum"] / s["csat_count"], 2) if s["csat_count"] else None,
            "csat_count": s["csat_count"],
            "csat_distribution": {str(k): s[f"csat_{k}"] for k in range(1, 6)},
            "had_to_repeat": s["had_to_repeat"],
            "had_to_repeat_per_100": _per_100(s["had_to_repeat"], calls),
            "asked_again": s["asked_again"],
            "asked_again_per_100": _per_100(s["asked_again"], calls),
            "repeat_calls": s["repeat_calls"],
            "repeat_callers": repeat_callers,
            "sentiment": {m: s[f"sentiment_{m}"] for m in SENTIMENTS},
        }


def of_calls(calls: Iterable[CallFacts]) -> Tally:
    tally = Tally()
    for call in calls:
        tally.add_call(call)
    return tally


def _per_100(count: int, calls: int) -> float | None:
    return round(100 * count / calls, 2) if calls else None


def _rate(count: int, calls: int) -> float | None:
    return round(count / calls, 4) if calls else None
