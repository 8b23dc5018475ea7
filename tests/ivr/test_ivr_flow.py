"""Flow files: the shipped Acme Bank tree, and every fault the loader must name."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import ivr
import ivr.flow as flow_module
from ivr.flow import FlowError, default_flow_path, load_flow, match_intent, parse_flow

ACME: dict[str, Any] = yaml.safe_load(default_flow_path().read_text(encoding="utf-8"))


def acme() -> dict[str, Any]:
    return copy.deepcopy(ACME)


def test_default_flow_ships_inside_the_package() -> None:
    path = default_flow_path()
    assert path.is_file()
    assert path.parent.parent == Path(ivr.__file__).resolve().parent
    assert load_flow(None) == load_flow(path) == load_flow(str(path))


def test_default_flow_maps_intents_to_queues() -> None:
    flow = load_flow()
    assert flow.name == "Acme Bank"
    assert flow.languages == ["en", "es"]
    assert flow.intent_queues == {"billing": "billing", "card_lost": "cards", "loans": "loans"}
    assert flow.queue_for("card_lost") == "cards"
    assert flow.queue_for("billing") == "billing"
    assert flow.queue_for("weather") is None
    assert flow.queue_for(None) is None
    assert flow.queues == {"billing", "cards", "loans", "escalations"}


def test_queues_always_include_escalations() -> None:
    data = acme()
    data["intents"] = {"billing": {"queue": "billing"}}
    data["nodes"]["main"]["options"] = {"1": {"intent": "billing"}}
    del data["nodes"]["main"]["spoken"]
    data["matching"] = {}
    flow = parse_flow(data)
    assert flow.queues == {"billing", "escalations"}


# Each case breaks the Acme flow in one way: (what to do, node at fault, field at fault, words).
Break = Callable[[dict[str, Any]], None]


def _key(target: Any, part: str) -> Any:
    # YAML reads list indices and unquoted menu keys (`1:`) as integers.
    if isinstance(target, list) or (part.isdigit() and int(part) in target):
        return int(part)
    return part


def _set(path: str, value: object) -> Break:
    def apply(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target: Any = data
        for part in parents:
            target = target[_key(target, part)]
        target[_key(target, last)] = value

    return apply


def _delete(path: str) -> Break:
    def apply(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target: Any = data
        for part in parents:
            target = target[_key(target, part)]
        del target[_key(target, last)]

    return apply


def _orphan(data: dict[str, Any]) -> None:
    data["nodes"]["orphan"] = {
        "type": "menu",
        "prompt": "Nobody hears this.",
        "options": {"1": {"intent": "billing"}},
    }


def _loop_for_ever(data: dict[str, Any]) -> None:
    # Two menus that only send the caller to each other, even on invalid keys.
    data["nodes"]["main"]["options"] = {"9": {"goto": "maze"}}
    del data["nodes"]["main"]["spoken"]
    data["nodes"]["main"]["on_invalid"] = {"goto": "maze"}
    data["nodes"]["maze"] = {
        "type": "menu",
        "prompt": "Press 1 to go back.",
        "options": {"1": {"goto": "main"}},
        "on_invalid": {"goto": "main"},
    }


def _collect_too_much(data: dict[str, Any]) -> None:
    # One menu choice that stores more answers than a handoff may carry.
    data["nodes"]["main"]["options"][1]["store"] = {f"answer_{i}": "yes" for i in range(51)}


def _rename_identify(name: str) -> Break:
    def apply(data: dict[str, Any]) -> None:
        data["nodes"][name] = data["nodes"].pop("identify")
        for option in data["nodes"]["language"]["options"].values():
            option["goto"] = name

    return apply


CASES: list[tuple[str, Break, str | None, str | None, str]] = [
    (
        "a prompt longer than a step keeps",
        _set("nodes/main/prompt/en", "Press 1. " * 223),
        "main",
        "prompt.en",
        "longer than 2000 characters",
    ),
    (
        "a stored answer longer than a handoff keeps",
        _set("nodes/main/options/1", {"intent": "billing", "store": {"note": "x" * 501}}),
        "main",
        "options.1.store.note",
        "longer than 500 characters",
    ),
    (
        "more answers than a handoff carries",
        _collect_too_much,
        None,
        "nodes",
        "the tree collects 51 answers",
    ),
    (
        "a verify node whose steps' names would be too long",
        _rename_identify("v" * 57),
        "v" * 57,
        None,
        "a verify node's name is at most 56 characters",
    ),
    (
        "unknown target",
        _set("nodes/language/options/1", {"goto": "nowhere"}),
        "language",
        "options.1.goto",
        "unknown node 'nowhere'",
    ),
    (
        "unknown target of a verification",
        _set("nodes/identify/on_success", {"goto": "mian"}),
        "identify",
        "on_success.goto",
        "unknown node 'mian'",
    ),
    ("unreachable node", _orphan, "orphan", None, "unreachable from the start node"),
    ("dead end", _loop_for_ever, "main", "options.9, on_invalid", "dead end"),
    (
        "handoff to an unknown intent",
        _set("nodes/main/options/3", {"intent": "mortgages"}),
        "main",
        "options.3.intent",
        "unknown intent 'mortgages'",
    ),
    (
        "spoken answers matched to an unknown intent",
        _set("nodes/main/spoken/intents", ["billing", "weather"]),
        "main",
        "spoken.intents.weather",
        "unknown intent",
    ),
    (
        "a prompt missing a language",
        _set("nodes/main/prompt", {"en": "Press 1."}),
        "main",
        "prompt",
        "no text for language es",
    ),
    (
        "a prompt in a language the flow does not speak",
        _set("nodes/identify/pin/prompt", {"en": "PIN", "es": "PIN", "fr": "NIP"}),
        "identify",
        "pin.prompt",
        "language fr is not in `languages`",
    ),
    ("unknown field", _set("nodes/main/colour", "red"), "main", "colour", "unknown field"),
    (
        "unknown field in an option",
        _set("nodes/main/options/1", {"intent": "billing", "queue": "billing"}),
        "main",
        "options.1.queue",
        "unknown field",
    ),
    ("unknown node type", _set("nodes/main/type", "dance"), "main", "type", "must be one of"),
    (
        "an option with two outcomes",
        _set("nodes/main/options/1", {"intent": "billing", "goto": "identify"}),
        "main",
        "options.1",
        "exactly one of goto",
    ),
    (
        "an option with no outcome",
        _set("nodes/main/options/1", {"say": "Hello"}),
        "main",
        "options.1",
        "exactly one of goto",
    ),
    (
        "a key that is no key",
        _set("nodes/main/options/12", {"intent": "billing"}),
        "main",
        "options.12",
        "not a valid key",
    ),
    (
        "digits the wrong way round",
        _set("nodes/identify/account/min_digits", 9),
        "identify",
        "account",
        "min_digits is greater than max_digits",
    ),
    (
        "a missing field",
        _delete("nodes/identify/on_success"),
        "identify",
        "on_success",
        "Field required",
    ),
    (
        "a language switch to a language the flow does not speak",
        _set("nodes/language/options/2", {"set_language": "fr", "goto": "identify"}),
        "language",
        "options.2.set_language",
        "'fr' is not in `languages`",
    ),
    (
        "a menu with nothing to choose",
        _set("nodes/language/options", {}),
        "language",
        "options",
        "needs options or spoken answers",
    ),
    (
        "a node name that is not a name",
        _set("nodes/Main Menu", {"type": "menu", "prompt": "x", "options": {1: {"hangup": True}}}),
        "Main Menu",
        None,
        "not a valid key",
    ),
    ("an unknown start", _set("start", "welcome"), None, "start", "unknown node 'welcome'"),
    (
        "a queue name that is not a name",
        _set("intents/card_lost/queue", "Lost Cards!"),
        None,
        "intents.card_lost.queue",
        "should match pattern",
    ),
    (
        "a spoken intent without keywords in one language",
        _set("intents/loans/keywords", {"en": ["loan*"]}),
        None,
        "intents.loans.keywords.es",
        "needs keywords in every language",
    ),
    (
        "a keyword with a star inside",
        _set("intents/loans/keywords/en/0", "lo*an"),
        None,
        "intents.loans.keywords.en.0",
        "bad keyword",
    ),
    (
        "an example that matches another intent",
        _set("intents/billing/examples/en", ["my card was stolen"]),
        None,
        "intents.billing.examples.en.0",
        "matches intent 'card_lost'",
    ),
    (
        "an unclear example that is clear",
        _set("matching/unclear_examples/en", ["I need a mortgage"]),
        None,
        "matching.unclear_examples.en.0",
        "matches intent 'loans'",
    ),
    (
        "an unknown placeholder",
        _set("messages/position/en", "You are number {place}."),
        None,
        "messages.position.en",
        "unknown placeholder place",
    ),
    (
        "a survey question missing a language",
        _set("survey/csat", {"es": "¿Qué tal?"}),
        None,
        "survey.csat",
        "no text for language en",
    ),
]


@pytest.mark.parametrize(
    ("breaking", "node", "field", "words"),
    [pytest.param(b, n, f, w, id=name) for name, b, n, f, w in CASES],
)
def test_each_fault_names_its_node_and_field(
    breaking: Break, node: str | None, field: str | None, words: str
) -> None:
    data = acme()
    breaking(data)
    with pytest.raises(FlowError) as caught:
        parse_flow(data, source="broken.yaml")
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.node, error.field) == (node, field), str(error)
    message = str(error)
    assert message.startswith("broken.yaml: ")
    assert words in message
    if node is not None:
        assert f"node {node!r}" in message
    if field is not None:
        assert f"field {field!r}" in message


def test_every_fault_is_reported_at_once() -> None:
    data = acme()
    data["nodes"]["main"]["options"][1] = {"goto": "nowhere"}
    data["nodes"]["main"]["options"][2] = {"intent": "nothing"}
    with pytest.raises(FlowError) as caught:
        parse_flow(data)
    lines = str(caught.value).splitlines()
    assert lines[0] == "2 problems"
    assert "node 'main', field 'options.1.goto': unknown node 'nowhere'" in lines[1]
    assert "node 'main', field 'options.2.intent': unknown intent 'nothing'" in lines[2]


def test_file_faults(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="cannot read the file"):
        load_flow(tmp_path / "missing.yaml")

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(FlowError, match=r"not valid YAML: line \d+"):
        load_flow(bad)

    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(FlowError, match="must be a mapping"):
        load_flow(listing)


def test_a_duplicate_node_is_refused_not_silently_replaced(tmp_path: Path) -> None:
    text = default_flow_path().read_text(encoding="utf-8")
    text += "\n  main:\n    type: menu\n    prompt: Again\n    options: {1: {hangup: true}}\n"
    file = tmp_path / "twice.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(FlowError, match="duplicate key 'main'"):
        load_flow(file)


BRANCH_FLOW = Path(__file__).parent / "flows" / "branch.yaml"


def test_a_scripted_branch_flow_loads() -> None:
    flow = load_flow(BRANCH_FLOW)
    assert flow.queue_for("card_lost") == "cards"
    assert set(flow.nodes) == {"main", "stolen", "last4", "story"}


@pytest.mark.parametrize(
    ("words", "intent"),
    [
        ("I lost my card", "card_lost"),
        ("My CARD was STOLEN!", "card_lost"),
        ("I can't find my card anywhere", "card_lost"),
        ("what's my balance", "billing"),
        ("I want to pay my bill", "billing"),
        ("payments", "billing"),
        ("a question about my mortgage", "loans"),
        ("perdí mi tarjeta", "card_lost"),
        ("perdi mi tarjeta", "card_lost"),
        ("quiero un PRÉSTAMO", "loans"),
        ("¿cuál es mi saldo?", "billing"),
        ("I want to change my address", None),
        ("", None),
        ("my card was stolen and I need a loan", None),  # two intents, equally named
        ("loan", "loans"),
    ],
)
def test_spoken_words_match_one_intent_or_none(words: str, intent: str | None) -> None:
    flow = load_flow()
    assert match_intent(flow, words, flow.intents).intent == intent


def test_the_margin_decides_between_two_named_intents() -> None:
    flow = load_flow()
    # "can't find" is three words of card_lost against one of loans: clear enough.
    words = "I can't find my card, the one for my loan"
    found = match_intent(flow, words, flow.intents)
    assert found.scores == {"card_lost": 3, "loans": 1}
    assert found.intent == "card_lost"
    data = acme()
    data["matching"]["margin"] = 4.0
    del data["matching"]["unclear_examples"]
    stricter = parse_flow(data)
    assert match_intent(stricter, words, stricter.intents).intent is None


def test_the_bounds_a_flow_is_held_to_are_the_backends() -> None:
    """A tree that loads never sends a step or a handoff the backend refuses."""
    from app.calls.schemas import HandoffIn, StepIn

    step = StepIn.model_json_schema()["properties"]
    assert step["prompt"]["maxLength"] == flow_module.MAX_TEXT_CHARS
    assert f"{{1,{flow_module.MAX_STEP_NODE_CHARS}}}" in step["node"]["pattern"]
    collected = HandoffIn.model_json_schema()["properties"]["collected"]
    assert collected["maxProperties"] == flow_module.MAX_COLLECTED
    (value,) = collected["patternProperties"].values()
    assert value["maxLength"] == flow_module.MAX_VALUE_CHARS
