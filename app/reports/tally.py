"""What calls add up to: the experience report's figures from one call, from many, from stored
roll-ups; the same arithmetic for every source, so a figure never depends on where it was read.

Times are counted in buckets, not kept: a value counts in the first bucket whose upper bound it
does not exceed (BOUNDS: to the second up to 20 s, then 5 s to a minute, 10 s to 2 minutes,
30 s to 5, a minute to 15, 5 minutes to 30, 15 minutes to an hour, 30 minutes to 2 hours, an hour
to a day; beyond a day, the last). A percentile is the bound of the bucket that holds it
(nearest rank), and the service level counts the waits whose bucket is within it: exact for any
threshold on that grid, as the default 20 s is.

A stored roll-up (Tally.to_json) holds the sums as a list in the order of SUMS, and each
histogram as its non-zero buckets, [index, count, index, count, ...] by position in BOUNDS:
changing either order needs a migration that rolls the calls up again.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import add, neg
from typing import Any


def _grid(*stretches: tuple[int, int, int]) -> tuple[int, ...]:
    return tuple(b for first, last, step in stretches for b in range(first, last + 1, step))


BOUNDS = _grid(
    (1, 20, 1),
    (25, 60, 5),
    (70, 120, 10),
    (150, 300, 30),
    (360, 900, 60),
    (1200, 1800, 300),
    (2700, 3600, 900),
    (5400, 7200, 1800),
    (10800, 86400, 3600),
)
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
_AT = {name: i for i, name in enumerate(SUMS)}


def bucket(seconds: float) -> int:
    """The index in BOUNDS of the bucket that holds this many seconds."""
    return min(bisect.bisect_left(BOUNDS, seconds), len(BOUNDS) - 1)


def percentile(histogram: Sequence[int], p: float) -> float | None:
    """The nearest-rank percentile in seconds: the smallest bucket bound that at least p of the
    values do not exceed (None of no values)."""
    n = sum(histogram)
    if n == 0:
        return None
    rank = max(1, math.ceil(p * n))
    seen = 0
    for i, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return float(BOUNDS[i])
    raise AssertionError("unreachable: the ranks add up to n")


def at_most(histogram: Sequence[int], seconds: float) -> int:
    """How many values are at most this many seconds (exact on the grid)."""
    return sum(count for bound, count in zip(BOUNDS, histogram, strict=True) if bound <= seconds)


def _zeros(n: int) -> list[int]:
    return [0] * n


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
    # Whether it repeats an earlier call (app/reports/rollup.py, to_facts), and when its
    # caller's last repeat call before it was: of any queue, of its queue, of its agent.
    repeats: bool = False
    prev_repeat_at: datetime | None = None
    prev_repeat_in_queue_at: datetime | None = None
    prev_repeat_of_agent_at: datetime | None = None

    def first_repeat_since(self, since: datetime, prev: datetime | None) -> bool:
        """A repeat call whose caller made none (in the same group, as prev says) since `since`:
        counted once per caller, in the group of prev."""
        return self.repeats and (prev is None or prev < since)


@dataclass
class Tally:
    sums: list[int] = field(default_factory=lambda: _zeros(len(SUMS)))
    waits: list[int] = field(default_factory=lambda: _zeros(len(BOUNDS)))
    handles: list[int] = field(default_factory=lambda: _zeros(len(BOUNDS)))
    abandons: list[int] = field(default_factory=lambda: _zeros(len(BOUNDS)))
    reasons: Counter[str] = field(default_factory=Counter)

    def __getitem__(self, name: str) -> int:
        return self.sums[_AT[name]]

    def _count(self, name: str, n: int = 1) -> None:
        self.sums[_AT[name]] += n

    def add_call(self, call: CallFacts) -> None:
        self._count("calls")
        answered = call.first_connected_at is not None
        if answered:
            self._count("answered")
            self.waits[bucket(call.waited_s)] += 1
            if call.final and not call.abandoned and call.ended_at is not None:
                assert call.first_connected_at is not None
                handle = (call.ended_at - call.first_connected_at).total_seconds()
                self.handles[bucket(handle)] += 1
        if call.abandoned:
            self._count("abandoned")
            self.abandons[bucket(call.waited_s)] += 1
        if call.escalation_reason is not None:
            self._count("escalations")
            self.reasons[call.escalation_reason] += 1
        self._count("transfers", call.transfers)
        self._count("asked_again", call.asked_again)
        if call.sentiment in SENTIMENTS:
            self._count(f"sentiment_{call.sentiment}")
        self.add_survey(call.csat, call.had_to_repeat)
        if call.repeats:
            self._count("repeat_calls")

    def add_survey(self, csat: int | None, had_to_repeat: bool | None) -> None:
        if csat is not None:
            self._count("csat_count")
            self._count("csat_sum", csat)
            self._count(f"csat_{csat}")
        if had_to_repeat:
            self._count("had_to_repeat")

    def merge(self, other: Tally) -> None:
        self.sums = list(map(add, self.sums, other.sums))
        self.waits = list(map(add, self.waits, other.waits))
        self.handles = list(map(add, self.handles, other.handles))
        self.abandons = list(map(add, self.abandons, other.abandons))
        self.reasons.update(other.reasons)

    def merge_json(self, data: Mapping[str, Any], *, sign: int = 1) -> None:
        """Add a stored roll-up's counts (Tally.to_json) to these, or take them away (sign -1:
        a day's hours outside a period); an empty one changes nothing."""
        if not data:
            return
        self.sums = list(map(add, self.sums, data["sums"] if sign > 0 else map(neg, data["sums"])))
        for mine, stored in (
            (self.waits, data["waits"]),
            (self.handles, data["handles"]),
            (self.abandons, data["abandons"]),
        ):
            for k in range(0, len(stored), 2):
                mine[stored[k]] += sign * stored[k + 1]
        for reason, n in data["reasons"].items():
            self.reasons[reason] += sign * n

    def to_json(self) -> dict[str, Any]:
        """What a roll-up row stores (app/reports/models.py, ReportRollup.tally)."""

        def pairs(histogram: list[int]) -> list[int]:
            return [x for i, n in enumerate(histogram) if n for x in (i, n)]

        return {
            "sums": self.sums,
            "waits": pairs(self.waits),
            "handles": pairs(self.handles),
            "abandons": pairs(self.abandons),
            "reasons": {reason: n for reason, n in self.reasons.items() if n},
        }

    def figures(self, *, service_level_s: float, repeat_callers: int) -> dict[str, Any]:
        calls = self["calls"]
        answered_or_abandoned = self["answered"] + self["abandoned"]
        csat_count = self["csat_count"]
        return {
            "calls": calls,
            "answered": self["answered"],
            "abandoned": self["abandoned"],
            "abandon_rate": _rate(self["abandoned"], calls),
            "abandon_p50_s": percentile(self.abandons, 0.5),
            # Of the calls answered or abandoned: a call still waiting has not had its chance.
            "service_level": _rate(at_most(self.waits, service_level_s), answered_or_abandoned),
            "wait_p50_s": percentile(self.waits, 0.5),
            "wait_p90_s": percentile(self.waits, 0.9),
            "handle_p50_s": percentile(self.handles, 0.5),
            "transfers": self["transfers"],
            "transfers_per_100": _per_100(self["transfers"], calls),
            "escalations": self["escalations"],
            "escalations_per_100": _per_100(self["escalations"], calls),
            "escalation_reasons": {r: n for r, n in self.reasons.most_common() if n > 0},
            "csat_mean": round(self["csat_sum"] / csat_count, 2) if csat_count else None,
            "csat_count": csat_count,
            "csat_distribution": {str(k): self[f"csat_{k}"] for k in range(1, 6)},
            "had_to_repeat": self["had_to_repeat"],
            "had_to_repeat_per_100": _per_100(self["had_to_repeat"], calls),
            "asked_again": self["asked_again"],
            "asked_again_per_100": _per_100(self["asked_again"], calls),
            "repeat_calls": self["repeat_calls"],
            "repeat_callers": repeat_callers,
            "sentiment": {m: self[f"sentiment_{m}"] for m in SENTIMENTS},
        }


def _per_100(count: int, calls: int) -> float | None:
    return round(100 * count / calls, 2) if calls else None


def _rate(count: int, calls: int) -> float | None:
    return round(count / calls, 4) if calls else None
