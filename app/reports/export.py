"""The reports as CSV, for a spreadsheet: one row per group (and the total), one column per
figure; a distribution's counts are a column each."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from app.reports.schemas import ExceptionsOut, ExperienceOut

# A cell a spreadsheet would run as a formula (OWASP's CSV injection): callers' words are
# anybody's words, so such a cell gets a leading quote and is shown as the text it is.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_STARTS) and not isinstance(value, int | float):
        return "'" + text
    return text


def _columns(figures: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    for name, value in figures.items():
        if isinstance(value, dict):
            for part, count in value.items():
                yield f"{name}_{part}", count
        else:
            yield name, value


def _write(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(rows[0].keys())
        for row in rows:
            writer.writerow(_cell(v) for v in row.values())
    return out.getvalue()


def experience_csv(report: ExperienceOut) -> str:
    total = {"key": "total", "name": None, **report.total.model_dump()}
    # The total holds every escalation reason any group has: the same columns on every row.
    reasons = dict.fromkeys(total["escalation_reasons"], 0)
    rows = []
    for figures in [total, *(group.model_dump() for group in report.groups)]:
        first = {"key": figures.pop("key"), "name": figures.pop("name")}
        figures["escalation_reasons"] = reasons | figures["escalation_reasons"]
        rows.append(first | dict(_columns(figures)))
    return _write(rows)


def exceptions_csv(report: ExceptionsOut) -> str:
    rows = []
    for group in report.groups:
        rows.append(
            {
                "label": group.label,
                "count": group.count,
                "examples": " | ".join(group.examples),
                "call_ids": " ".join(str(i) for i in group.call_ids),
                "queues": " ".join(f"{q}:{n}" for q, n in group.queues.items()),
                "resolutions": " ".join(f"{r}:{n}" for r, n in group.resolutions.items()),
            }
        )
    if not rows:
        return "label,count,examples,call_ids,queues,resolutions\r\n"
    return _write(rows)
