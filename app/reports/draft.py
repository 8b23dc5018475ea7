"""A group of the exceptions report as a draft intent for the flow file: YAML to paste under
`intents:`, checked against the server's own flow so that `tellonce flow check` accepts it."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from app.reports.similarity import stem
from ivr.flow import ESCALATIONS, Flow, FlowError, MenuNode, parse_flow

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME = 64
# A stem shorter than this matches too much as a prefix ("lat*": late, later, latest).
MIN_PREFIX = 5


@dataclass
class Draft:
    name: str
    queue: str
    keywords: list[str]
    spoken_nodes: list[str]
    # A key term left out, and why: it would change what the flow's own examples match.
    left_out: dict[str, str] = field(default_factory=dict)


def intent_name(terms: Sequence[str], taken: Sequence[str]) -> str:
    """The terms joined by underscores, as a flow name allows (a letter first, at most 64
    characters), made unique among the flow's intents with a number."""
    words = [re.sub(r"[^a-z0-9]", "", term.lower()) for term in terms]
    base = "_".join(word for word in words if word)[:MAX_NAME] or "intent"
    if not base[0].isalpha():
        base = f"intent_{base}"[:MAX_NAME]
    name, n = base, 2
    while name in taken:
        suffix = f"_{n}"
        name, n = base[: MAX_NAME - len(suffix)] + suffix, n + 1
    return name


def queue_of(queues: dict[str, int]) -> str:
    """The queue most of the group's calls ended in (queues is most common first); else
    escalations, where a person hears what the tree does not know."""
    for queue in queues:
        if _NAME.match(queue) and len(queue) <= MAX_NAME:
            return queue
    return ESCALATIONS


def keyword(term: str) -> str:
    """The term as callers said it, or its stem with `*` so that its other forms match too
    (charges, charged -> charg*), when the stem is long enough to say little else."""
    base = stem(term)
    if base != term and len(base) >= MIN_PREFIX and term.startswith(base):
        return f"{base}*"
    return term


def _merged(flow: Flow, name: str, queue: str, keywords: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = flow.model_dump(mode="json")
    data["intents"][name] = {
        "queue": queue,
        "keywords": {lang: list(keywords) for lang in flow.languages},
    }
    for node in data["nodes"].values():
        if node["type"] == "menu" and node.get("spoken") is not None:
            node["spoken"]["intents"][name] = {"intent": name}
    return data


def _fault(flow: Flow, name: str, queue: str, keywords: list[str]) -> str | None:
    try:
        parse_flow(_merged(flow, name, queue, keywords))
    except FlowError as exc:
        return str(exc.problems[0])
    return None


def build(flow: Flow, *, terms: Sequence[str], queues: dict[str, int]) -> Draft:
    """The draft of one group: each key term is kept as a keyword only if the flow, with the
    draft added to its spoken answers, still passes its own checks."""
    name = intent_name(terms, list(flow.intents))
    queue = queue_of(queues)
    spoken = [
        node_id
        for node_id, node in flow.nodes.items()
        if isinstance(node, MenuNode) and node.spoken is not None
    ]
    draft = Draft(name=name, queue=queue, keywords=[], spoken_nodes=spoken)
    for term in terms:
        word = keyword(term)
        if word in draft.keywords:
            continue
        fault = _fault(flow, name, queue, [*draft.keywords, word])
        if fault is None:
            draft.keywords.append(word)
        else:
            draft.left_out[word] = fault
    return draft


def _quoted(text: str) -> str:
    # Callers' words go into comments: JSON quoting keeps a line break from ending one.
    return json.dumps(text, ensure_ascii=False)


def render(
    flow: Flow,
    draft: Draft,
    *,
    count: int,
    examples: Sequence[str],
    start: datetime,
    end: datetime,
) -> str:
    """The YAML snippet: comments on where it came from and how to paste it, then the intent,
    indented to go under `intents:` as it is."""
    lines = [
        f"# Draft intent from Tellonce's exceptions report: {count} call(s) from "
        f"{start.isoformat()} to {end.isoformat()}.",
        "# What callers said:",
        *(f"#   {_quoted(example)}" for example in examples),
        "# To use it: paste the intent below under `intents:` in the flow file, as it is.",
    ]
    if draft.spoken_nodes:
        for node_id in draft.spoken_nodes:
            lines.append(
                f"# Then add {draft.name} to `spoken.intents` of node {node_id} "
                f"(e.g. intents: [..., {draft.name}]), so that callers who say it are matched."
            )
    lines.append("# Check the result with: tellonce flow check FILE")
    if len(flow.languages) > 1:
        lines.append(
            "# The keywords are the callers' words, given for every language of the flow: "
            "translate them."
        )
    for word, why in draft.left_out.items():
        lines.append(f"# Left out keyword {_quoted(word)}: with it, {_quoted(why)}")
    intent = {
        draft.name: {
            "queue": draft.queue,
            "keywords": {lang: list(draft.keywords) for lang in flow.languages},
        }
    }
    body = yaml.safe_dump(intent, sort_keys=False, allow_unicode=True, default_flow_style=None)
    lines.extend(f"  {line}" for line in body.splitlines())
    return "\n".join(lines) + "\n"
