"""Draft intents from exceptions groups: names a flow accepts, keywords that keep the flow's own
examples matching as before, and callers' words that stay inside comments."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from app.reports import draft
from ivr.flow import load_flow, parse_flow


def test_names_are_flow_names_and_unique() -> None:
    assert draft.intent_name(["husband", "account"], []) == "husband_account"
    assert draft.intent_name(["billing"], ["billing", "billing_2"]) == "billing_3"
    assert draft.intent_name(["24", "hours"], []) == "intent_24_hours"
    assert len(draft.intent_name(["x" * 64, "y"], ["x" * 64])) <= 64


def test_the_queue_most_calls_ended_in_else_escalations() -> None:
    assert draft.queue_of({"billing": 3, "escalations": 1}) == "billing"
    assert draft.queue_of({"(none)": 2}) == "escalations"
    assert draft.keyword("charges") == "charg*" and draft.keyword("late") == "late"


def test_a_term_that_would_take_the_flows_examples_is_left_out() -> None:
    flow = load_flow(None)
    built = draft.build(flow, terms=["card", "charges", "widow"], queues={"cards": 2})
    assert built.keywords == ["widow"]
    assert set(built.left_out) == {"card", "charg*"}
    assert built.spoken_nodes == ["main"]


def test_the_rendered_draft_merges_into_the_flow_and_keeps_words_in_comments() -> None:
    flow = load_flow(None)
    built = draft.build(flow, terms=["husband", "account", "died"], queues={"escalations": 3})
    start = datetime(2026, 11, 10, tzinfo=UTC)
    text = draft.render(
        flow, built, count=3, examples=["x\nbilling: {queue: cards}"], start=start, end=start
    )
    ((name, intent),) = yaml.safe_load(text).items()
    assert name == "husband_account_died"
    data = flow.model_dump(mode="json")
    data["intents"][name] = intent
    data["nodes"]["main"]["spoken"]["intents"][name] = {"intent": name}
    merged = parse_flow(data)
    assert merged.intents[name].keywords["en"] == ["husband", "died"]
    assert merged.intents["billing"].queue == "billing"
