"""Phone-tree files: pydantic models of the YAML format and a loader that rejects every fault.

A flow that loads is safe to run: every target exists, every node is reachable and can end.
"""

from __future__ import annotations

import os
import re
import string
import unicodedata
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

ESCALATIONS = "escalations"
NODE_TYPES = ("menu", "collect", "verify")
# What the backend keeps of a step and a handoff (StepIn and HandoffIn in app/calls/schemas.py):
# a tree that sent more could never record its prompts or hand its callers off.
MAX_TEXT_CHARS = 2000
MAX_STEP_NODE_CHARS = 64
MAX_COLLECTED = 50
MAX_VALUE_CHARS = 500
POSITION_PLACEHOLDERS = frozenset({"position", "wait_s"})

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Lang = Annotated[str, Field(pattern=r"^[a-z]{2}$")]
Key = Annotated[str, Field(pattern=r"^[0-9*#]$")]
Terminator = Annotated[str, Field(pattern=r"^[*#]$")]
# One text for every language, or one per language ({en: ..., es: ...}).
Text = str | dict[str, str]


class Problem(NamedTuple):
    """One fault in a flow file: the node (None outside `nodes`), the field path, what is wrong."""

    node: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.node is not None:
            where.append(f"node {self.node!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class FlowError(ValueError):
    """A flow file that cannot be run; the message names each node and field at fault."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self._render())

    @property
    def node(self) -> str | None:
        return self.problems[0].node if self.problems else None

    @property
    def field(self) -> str | None:
        return self.problems[0].field if self.problems else None

    def _render(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            return f"{prefix}{self.problems[0]}"
        lines = [f"{prefix}{len(self.problems)} problems"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(_Model):
    """What a choice does: optional side effects, then exactly one of goto, hand off, hang up."""

    say: Text | None = None
    set_language: Lang | None = None
    # Answers a choice stands for (e.g. stolen: "yes"); they travel with the call in `collected`.
    store: dict[Name, str] = Field(default_factory=dict)
    goto: Name | None = None
    intent: Name | None = None
    escalate: Name | None = None
    hangup: bool = False

    @model_validator(mode="after")
    def _one_outcome(self) -> Action:
        handoff = self.intent is not None or self.escalate is not None
        outcomes = [self.goto is not None, handoff, self.hangup]
        if sum(outcomes) != 1:
            raise ValueError("needs exactly one of goto, intent/escalate (a handoff), hangup")
        return self

    @property
    def is_handoff(self) -> bool:
        return self.intent is not None or self.escalate is not None

    @property
    def ends(self) -> bool:
        return self.goto is None


class Spoken(_Model):
    """Spoken answers: words matched to one of these intents, or `otherwise` when unclear."""

    intents: dict[Name, Action]
    otherwise: Action = Field(default_factory=lambda: Action(escalate="unscripted"))

    @field_validator("intents", mode="before")
    @classmethod
    def _list_means_hand_off(cls, value: object) -> object:
        # `intents: [billing, loans]` is short for handing off with the matched intent.
        if isinstance(value, list):
            return {name: {"intent": name} for name in value}
        return value


class DigitsSpec(_Model):
    prompt: Text
    min_digits: int = Field(ge=1, le=32)
    max_digits: int = Field(ge=1, le=32)
    terminator: Terminator | None = "#"

    @model_validator(mode="after")
    def _range(self) -> DigitsSpec:
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits is greater than max_digits")
        return self


class MenuNode(_Model):
    """Press a key (or, with `spoken`, say a few words)."""

    type: Literal["menu"]
    prompt: Text
    options: dict[Key, Action] = Field(default_factory=dict)
    spoken: Spoken | None = None
    # Invalid answers in a row before `on_invalid`; the contract's "two invalid keys in a row".
    max_invalid: int = Field(default=2, ge=1, le=9)
    on_invalid: Action = Field(default_factory=lambda: Action(escalate="no_match"))

    @field_validator("options", mode="before")
    @classmethod
    def _int_keys(cls, value: object) -> object:
        # YAML reads an unquoted `1:` as the integer 1.
        if isinstance(value, dict):
            return {
                str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v
                for k, v in value.items()
            }
        return value

    def actions(self) -> Iterator[tuple[str, Action]]:
        for key, action in self.options.items():
            yield f"options.{key}", action
        if self.spoken is not None:
            for intent, action in self.spoken.intents.items():
                yield f"spoken.intents.{intent}", action
            yield "spoken.otherwise", self.spoken.otherwise
        yield "on_invalid", self.on_invalid

    def texts(self) -> Iterator[tuple[str, Text]]:
        yield "prompt", self.prompt


class CollectNode(_Model):
    """Ask one more question and keep the answer in `collected[save_as]`."""

    type: Literal["collect"]
    prompt: Text
    save_as: Name
    input: Literal["digits", "words"] = "digits"
    min_digits: int = Field(default=1, ge=1, le=32)
    max_digits: int = Field(default=16, ge=1, le=32)
    terminator: Terminator | None = "#"
    max_invalid: int = Field(default=2, ge=1, le=9)
    on_invalid: Action = Field(default_factory=lambda: Action(escalate="no_match"))
    next: Action

    @model_validator(mode="after")
    def _range(self) -> CollectNode:
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits is greater than max_digits")
        return self

    def actions(self) -> Iterator[tuple[str, Action]]:
        yield "next", self.next
        yield "on_invalid", self.on_invalid

    def texts(self) -> Iterator[tuple[str, Text]]:
        yield "prompt", self.prompt


class VerifyNode(_Model):
    """Account number, then PIN, checked by the backend; `attempts` tries in all."""

    type: Literal["verify"]
    account: DigitsSpec
    pin: DigitsSpec
    attempts: int = Field(default=3, ge=1, le=9)
    # Entries in a row that cannot be an account number or PIN (too short, words...) before
    # `on_failure`: each is asked again without using one of `attempts`.
    max_invalid: int = Field(default=3, ge=1, le=9)
    retry_say: Text
    success_say: Text | None = None
    on_success: Action
    on_failure: Action = Field(default_factory=lambda: Action(escalate="verification_failed"))

    def actions(self) -> Iterator[tuple[str, Action]]:
        yield "on_success", self.on_success
        yield "on_failure", self.on_failure

    def texts(self) -> Iterator[tuple[str, Text]]:
        yield "account.prompt", self.account.prompt
        yield "pin.prompt", self.pin.prompt
        yield "retry_say", self.retry_say
        if self.success_say is not None:
            yield "success_say", self.success_say


Node = Annotated[MenuNode | CollectNode | VerifyNode, Field(discriminator="type")]


class Intent(_Model):
    queue: Name
    # Per language; a trailing `*` matches any word that starts so ("pay*": pay, payment).
    keywords: dict[Lang, list[str]] = Field(default_factory=dict)
    # Sample answers that must match this intent: checked at load, and used by `--calls`.
    examples: dict[Lang, list[str]] = Field(default_factory=dict)


class Matching(_Model):
    """The confidence rule for spoken answers (see match_intent)."""

    min_score: int = Field(default=1, ge=1)
    margin: float = Field(default=2.0, ge=1.0)
    # Sample answers that must match no intent (they go to a person as `unscripted`).
    unclear_examples: dict[Lang, list[str]] = Field(default_factory=dict)


class Messages(_Model):
    invalid: Text
    # A typed or spoken answer that cannot be an account number or PIN: asked again, no try
    # used (else `invalid` is said).
    entry_invalid: Text | None = None
    transfer: Text
    goodbye: Text
    # May use {position} and {wait_s}.
    position: Text
    connected: Text
    call_ended: Text


class Callback(_Model):
    """The callback offer to a caller waiting in a queue: the centre says when (it has waited
    TELLONCE_CALLBACK_OFFER_AFTER_S); the tree says it and listens for `key`."""

    enabled: bool = True
    key: Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")] = "1"
    offer: Text = (
        "You can keep your place in line and be called back instead. "
        "Press 1 to be called back at this number."
    )
    accepted: Text = "Thank you. You keep your place in line, and an agent will call you back."


class Survey(_Model):
    csat: Text
    repeat: Text
    thanks: Text


class Flow(_Model):
    """A whole phone tree. Build one with load_flow or parse_flow, which check it as a whole."""

    name: str = Field(min_length=1)
    languages: list[Lang] = Field(min_length=1)
    start: Name
    intents: dict[Name, Intent]
    matching: Matching = Field(default_factory=Matching)
    messages: Messages
    survey: Survey
    callback: Callback = Field(default_factory=Callback)
    nodes: dict[Name, Node] = Field(min_length=1)
    # What 0 does at any prompt of the tree where 0 is not itself an answer: reach a person.
    operator: Action = Field(default_factory=lambda: Action(escalate="caller_requested"))

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def intent_queues(self) -> dict[str, str]:
        return {name: intent.queue for name, intent in self.intents.items()}

    def queue_for(self, intent: str | None) -> str | None:
        """The queue of a scripted intent; None for no intent or one this flow does not script."""
        if intent is None:
            return None
        found = self.intents.get(intent)
        return None if found is None else found.queue

    @property
    def queues(self) -> set[str]:
        return {intent.queue for intent in self.intents.values()} | {ESCALATIONS}

    def text(self, text: Text, language: str) -> str:
        if isinstance(text, str):
            return text
        return text.get(language) or text[self.default_language]


def default_flow_path() -> Path:
    """The Acme Bank flow shipped inside the package."""
    return Path(__file__).resolve().parent / "flows" / "acme.yaml"


def load_flow(path: str | os.PathLike[str] | None = None) -> Flow:
    """Read and check a flow file (None: the shipped default); FlowError on any fault."""
    file = Path(path) if path is not None else default_flow_path()
    source = str(file)
    try:
        raw = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise FlowError([Problem(None, None, f"cannot read the file: {reason}")], source) from exc
    try:
        data = yaml.load(raw, Loader=_StrictLoader)  # a SafeLoader subclass: no objects
    except yaml.YAMLError as exc:
        raise FlowError(
            [Problem(None, None, f"not valid YAML: {_yaml_reason(exc)}")], source
        ) from exc
    return parse_flow(data, source=source)


def parse_flow(data: object, source: str | None = None) -> Flow:
    """Check already-parsed data (a dict as from YAML) and build the Flow."""
    if not isinstance(data, dict):
        raise FlowError([Problem(None, None, "the file must be a mapping of sections")], source)
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        raise FlowError([_problem_from(error) for error in exc.errors()], source) from None
    problems = list(_check(flow))
    if problems:
        raise FlowError(problems, source)
    return flow


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which would silently replace a node."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        if isinstance(key, Hashable):
            seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)


def _problem_from(error: Any) -> Problem:
    loc = [str(part) for part in error["loc"]]
    message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
    if loc and loc[-1] == "[key]":
        # A bad mapping key (a menu key, a node or intent name): the key itself is the field.
        loc.pop()
        message = f"not a valid key: {message}"
    if error["type"] in ("union_tag_not_found", "union_tag_invalid"):
        message = f"type must be one of {', '.join(NODE_TYPES)}"
        loc.append("type")
    if len(loc) >= 2 and loc[0] == "nodes":
        rest = loc[2:]
        # Pydantic puts the discriminator's value in the path; the author never wrote it.
        if rest and rest[0] in NODE_TYPES:
            rest = rest[1:]
        return Problem(loc[1], ".".join(rest) or None, message)
    return Problem(None, ".".join(loc) or None, message)


def tokens(text: str) -> list[str]:
    """Lower-case words without accents, so "Préstamo" and "prestamo" match."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.findall(r"[a-z0-9]+\*?", plain)


@dataclass(frozen=True)
class Match:
    intent: str | None
    scores: Mapping[str, int]


def match_intent(flow: Flow, text: str, candidates: Iterable[str]) -> Match:
    """Match spoken words to one intent, or to None when the words are unclear.

    Each keyword found scores its number of words; keywords of every language count, since
    callers mix languages. The best intent wins when it scores at least `matching.min_score`
    and at least `matching.margin` times the runner-up; otherwise (nothing found, or two
    intents named about as strongly) the answer is unclear and a person should hear it.
    """
    words = tokens(text)
    scores: dict[str, int] = {}
    for intent in candidates:
        score = 0
        for keywords in flow.intents[intent].keywords.values():
            for keyword in keywords:
                pattern = tokens(keyword)
                if _contains(words, pattern):
                    score += len(pattern)
        if score:
            scores[intent] = score
    ranked = sorted(scores.values(), reverse=True)
    if not ranked or ranked[0] < flow.matching.min_score:
        return Match(None, scores)
    if len(ranked) > 1 and ranked[0] < flow.matching.margin * ranked[1]:
        return Match(None, scores)
    best = max(scores, key=lambda name: scores[name])
    return Match(best, scores)


def _contains(words: list[str], pattern: list[str]) -> bool:
    n = len(pattern)
    return any(
        all(_word_matches(words[i + j], pattern[j]) for j in range(n))
        for i in range(len(words) - n + 1)
    )


def _word_matches(word: str, keyword: str) -> bool:
    if keyword.endswith("*"):
        return word.startswith(keyword[:-1])
    return word == keyword


def _check(flow: Flow) -> Iterator[Problem]:
    """Everything pydantic cannot see alone: references, languages, reachability, dead ends."""
    languages = set(flow.languages)
    if len(languages) != len(flow.languages):
        yield Problem(None, "languages", "a language is listed twice")

    def texts(node: str | None, field: str, text: Text) -> Iterator[Problem]:
        if isinstance(text, str):
            if not text.strip():
                yield Problem(node, field, "empty text")
            elif len(text) > MAX_TEXT_CHARS:
                yield Problem(node, field, f"longer than {MAX_TEXT_CHARS} characters")
            return
        missing = sorted(languages - text.keys())
        extra = sorted(text.keys() - languages)
        if missing:
            yield Problem(node, field, f"no text for language {', '.join(missing)}")
        if extra:
            yield Problem(node, field, f"language {', '.join(extra)} is not in `languages`")
        for lang, value in text.items():
            if not value.strip():
                yield Problem(node, f"{field}.{lang}", "empty text")
            elif len(value) > MAX_TEXT_CHARS:
                yield Problem(node, f"{field}.{lang}", f"longer than {MAX_TEXT_CHARS} characters")

    def action(node: str | None, field: str, act: Action) -> Iterator[Problem]:
        if act.say is not None:
            yield from texts(node, f"{field}.say", act.say)
        if act.goto is not None and act.goto not in flow.nodes:
            yield Problem(node, f"{field}.goto", f"unknown node {act.goto!r}")
        # A spoken intent's own unknown name is reported once, at the spoken intent.
        same_fault = field == f"spoken.intents.{act.intent}"
        if act.intent is not None and act.intent not in flow.intents and not same_fault:
            yield Problem(node, f"{field}.intent", f"unknown intent {act.intent!r}")
        if act.set_language is not None and act.set_language not in languages:
            yield Problem(
                node, f"{field}.set_language", f"{act.set_language!r} is not in `languages`"
            )
        for key, value in act.store.items():
            if len(value) > MAX_VALUE_CHARS:
                yield Problem(
                    node, f"{field}.store.{key}", f"longer than {MAX_VALUE_CHARS} characters"
                )

    if flow.start not in flow.nodes:
        yield Problem(None, "start", f"unknown node {flow.start!r}")

    yield from action(None, "operator", flow.operator)
    for section_name, section in (("messages", flow.messages), ("survey", flow.survey)):
        for key in type(section).model_fields:
            value = getattr(section, key)
            if value is not None:
                yield from texts(None, f"{section_name}.{key}", value)
    for lang in flow.languages:
        template = flow.text(flow.messages.position, lang)
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        except ValueError as exc:
            yield Problem(None, f"messages.position.{lang}", f"bad placeholder: {exc}")
            continue
        unknown = fields - POSITION_PLACEHOLDERS
        if unknown:
            yield Problem(
                None,
                f"messages.position.{lang}",
                f"unknown placeholder {', '.join(sorted(unknown))} "
                f"(use {{position}} and {{wait_s}})",
            )

    spoken_intents: set[str] = set()
    collected = set(flow.operator.store)
    for node_id, node in flow.nodes.items():
        for field, text in node.texts():
            yield from texts(node_id, field, text)
        for field, act in node.actions():
            yield from action(node_id, field, act)
            collected.update(act.store)
        if isinstance(node, CollectNode):
            collected.add(node.save_as)
        if isinstance(node, VerifyNode):
            longest = max(len(f"{node_id}.{stage}") for stage in ("account", "pin"))
            if longest > MAX_STEP_NODE_CHARS:
                yield Problem(
                    node_id,
                    None,
                    f"a verify node's name is at most {MAX_STEP_NODE_CHARS - len('.account')} "
                    "characters (its steps are recorded as NAME.account and NAME.pin)",
                )
        if isinstance(node, MenuNode):
            if not node.options and node.spoken is None:
                yield Problem(node_id, "options", "a menu needs options or spoken answers")
            if node.spoken is not None:
                if not node.spoken.intents:
                    yield Problem(node_id, "spoken.intents", "no intents to match")
                for wanted in node.spoken.intents:
                    if wanted not in flow.intents:
                        yield Problem(node_id, f"spoken.intents.{wanted}", "unknown intent")
                    else:
                        spoken_intents.add(wanted)

    if len(collected) > MAX_COLLECTED:
        yield Problem(
            None,
            "nodes",
            f"the tree collects {len(collected)} answers (save_as and store); at most "
            f"{MAX_COLLECTED} travel with a call",
        )

    for name, intent in flow.intents.items():
        for lang, words in intent.keywords.items():
            if lang not in languages:
                yield Problem(
                    None, f"intents.{name}.keywords.{lang}", "language not in `languages`"
                )
            for i, word in enumerate(words):
                if not tokens(word) or "*" in word.rstrip("*") or word.count("*") > 1:
                    yield Problem(
                        None,
                        f"intents.{name}.keywords.{lang}.{i}",
                        f"bad keyword {word!r} (words, with at most one `*` at the end)",
                    )
        if name in spoken_intents:
            for lang in flow.languages:
                if not intent.keywords.get(lang):
                    yield Problem(
                        None,
                        f"intents.{name}.keywords.{lang}",
                        "a spoken intent needs keywords in every language",
                    )
        yield from _examples(flow, f"intents.{name}.examples", intent.examples, name)
    yield from _examples(flow, "matching.unclear_examples", flow.matching.unclear_examples, None)

    if flow.start in flow.nodes:
        yield from _graph_problems(flow)


def _examples(
    flow: Flow, field: str, examples: Mapping[str, list[str]], expected: str | None
) -> Iterator[Problem]:
    """Each example must come out as `expected` under the file's own confidence rule."""
    for lang, sentences in examples.items():
        if lang not in flow.languages:
            yield Problem(None, f"{field}.{lang}", "language not in `languages`")
        for i, sentence in enumerate(sentences):
            found = match_intent(flow, sentence, flow.intents).intent
            if found != expected:
                got = "no intent (unclear)" if found is None else f"intent {found!r}"
                yield Problem(None, f"{field}.{lang}.{i}", f"{sentence!r} matches {got}")


def _targets(node: MenuNode | CollectNode | VerifyNode) -> Iterable[str]:
    return [act.goto for _, act in node.actions() if act.goto is not None]


def _graph_problems(flow: Flow) -> Iterator[Problem]:
    reachable = {flow.start}
    todo = [flow.start]
    while todo:
        for target in _targets(flow.nodes[todo.pop()]):
            if target in flow.nodes and target not in reachable:
                reachable.add(target)
                todo.append(target)
    for node_id in flow.nodes:
        if node_id not in reachable:
            yield Problem(node_id, None, f"unreachable from the start node {flow.start!r}")

    # A node can end the call if one of its choices hands off or hangs up, or leads to one that can.
    can_end = {n for n, node in flow.nodes.items() if any(a.ends for _, a in node.actions())}
    changed = True
    while changed:
        changed = False
        for node_id, node in flow.nodes.items():
            if node_id not in can_end and any(t in can_end for t in _targets(node)):
                can_end.add(node_id)
                changed = True
    for node_id, node in flow.nodes.items():
        if node_id in reachable and node_id not in can_end:
            fields = ", ".join(field for field, _ in node.actions())
            yield Problem(
                node_id, fields, "dead end: no choice from here ever hands off or hangs up"
            )
