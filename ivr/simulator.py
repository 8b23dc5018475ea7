"""The caller simulator: drives the engine for one call (scripted or at a terminal) or many.

Everything reaches the backend through the public IVR routes (ivr.client): each answer is
posted as a step when it is given, and verification, handoff and hang-up as they happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import httpx

from ivr.client import ApiError, IvrClient
from ivr.driver import CallRunner, Say
from ivr.engine import (
    PIN_MASK,
    Awaiting,
    CallerHangup,
    CollectNode,
    Engine,
    Keys,
    MenuNode,
    Phase,
    QueueStatus,
    Speech,
    State,
    VerifyNode,
)
from ivr.flow import Flow, tokens

PROMPT_MARK = "> "
HANGUP_WORDS = frozenset({"/hangup", "/h", "/quit", "/q"})
KEYS_RE = re.compile(r"[0-9*#]*")
# A caller stuck in a looping tree gives up; no real call goes round this often.
MAX_ANSWERS = 40


def parse_keys(text: str) -> list[Keys | Speech]:
    """The --keys list: comma-separated answers, keys (digits, * and #) or "quoted words".

    Commas inside quotes belong to the words; an empty answer is silence.
    """
    if not text.strip():
        return []
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise ValueError("a quote is not closed")
    items.append("".join(current))
    answers: list[Keys | Speech] = []
    for n, raw in enumerate(items, start=1):
        item = raw.strip()
        if len(item) >= 2 and item[0] == item[-1] == '"':
            answers.append(Speech(item[1:-1]))
        elif KEYS_RE.fullmatch(item):
            answers.append(Keys(item))
        else:
            raise ValueError(
                f'answer {n} ({item!r}) is neither keys (digits, * and #) nor "quoted words"'
            )
    return answers


def parse_answer(line: str) -> Keys | Speech:
    """A line typed at the terminal: keys when it is only keys (spaces ignored), else words."""
    text = line.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return Speech(text[1:-1])
    compact = "".join(text.split())
    if KEYS_RE.fullmatch(compact):
        return Keys(compact)
    return Speech(text)


def shown(state: State, answer: Keys | Speech) -> str:
    """How an answer is echoed: a PIN never is."""
    if state.secret:
        return PIN_MASK
    if isinstance(answer, Speech):
        return f'"{answer.text}"'
    return answer.keys or "(silence)"


# Scripted: --keys.


async def play_keys(
    runner: CallRunner, answers: list[Keys | Speech], out: Say, *, poll_s: float = 2.0
) -> None:
    """Answer each prompt with the next key; with none left the caller hangs up. Keys left
    after the handoff wait for the callback offer: the next one answers it."""
    await runner.start()
    pending = list(answers)
    while runner.state.awaiting is Awaiting.INPUT:
        if not pending:
            out("(no key left: the caller hangs up)")
            await runner.send(CallerHangup())
            break
        answer = pending.pop(0)
        out(f"> {shown(runner.state, answer)}")
        await runner.send(answer)
    if pending and runner.state.phase is Phase.QUEUED:
        await _await_callback_offer(runner, pending, out, poll_s)
    if pending:
        out(f"({len(pending)} unused key(s) left)")
    out(outcome_line(runner))


async def _await_callback_offer(
    runner: CallRunner, pending: list[Keys | Speech], out: Say, poll_s: float
) -> None:
    """Wait in the queue, hearing the position, until the callback offer; answer it with the
    next key. Gives up, leaving the keys unused, once no offer can come (callbacks are off, or
    the call left the queue)."""
    assert runner.call_id is not None
    while runner.state.phase is Phase.QUEUED:
        status = await runner.client.position(runner.call_id)
        await runner.send(
            QueueStatus(status.state, status.position, status.wait_s, status.callback_offer)
        )
        if runner.state.callback_offered:
            answer = pending.pop(0)
            out(f"> {shown(runner.state, answer)}")
            await runner.send(answer)
            return
        if status.callback_offer_in_s is None:
            out("(no callback offer is coming)")
            return
        await asyncio.sleep(min(poll_s, max(status.callback_offer_in_s, 0.1)))


def outcome_line(runner: CallRunner) -> str:
    if runner.callback and runner.handoff is not None:
        return f"callback requested: the call keeps its place in queue {runner.handoff.queue}"
    if runner.handoff is not None:
        position = (
            "" if runner.handoff.position is None else f", position {runner.handoff.position}"
        )
        reason = f" ({runner.escalate_reason})" if runner.escalate_reason else ""
        return f"handed off to queue {runner.handoff.queue}{reason}{position}"
    return "the call ended in the phone tree"


# Interactive: a caller at a terminal.


class LineReader:
    """Lines typed at a file descriptor, read without blocking the event loop.

    While a call waits in a queue the simulator polls its position and must still notice a
    caller typing /hangup; a blocking input() cannot be interrupted, this can.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._buffer = b""
        self._eof = False
        self._selector = False

    def __enter__(self) -> LineReader:
        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(self._fd, self._readable)
            self._selector = True
        except (OSError, NotImplementedError, ValueError):
            # Regular files cannot be watched by epoll, and some loops watch nothing: a thread.
            threading.Thread(target=self._read_in_thread, args=(loop,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._selector:
            asyncio.get_running_loop().remove_reader(self._fd)

    def interrupt(self) -> None:
        """Ctrl-C: the caller hangs up."""
        print(flush=True)  # after the terminal's "^C"
        self._lines.put_nowait("/hangup")

    async def read(self, secret: bool = False, mark: str = "") -> str | None:
        """The next line, None at end of input; `secret` turns the terminal's echo off.

        The `mark` ("> ") is shown once the echo is off, so a caller who waits for it never
        sees their PIN.
        """
        if self._eof and self._lines.empty():
            return None
        with self._no_echo() if secret else contextlib.nullcontext():
            if mark:
                print(mark, end="", flush=True)
            line = await self._lines.get()
        return line

    @contextlib.contextmanager
    def _no_echo(self) -> Iterator[None]:
        if not os.isatty(self._fd):
            yield
            return
        import termios

        old = termios.tcgetattr(self._fd)
        new = termios.tcgetattr(self._fd)
        new[3] &= ~termios.ECHO
        termios.tcsetattr(self._fd, termios.TCSADRAIN, new)
        try:
            yield
        finally:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, old)
            print(flush=True)  # the Enter the caller typed was not echoed either

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except OSError:
            data = b""
        self._feed(data)

    def _read_in_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data = os.read(self._fd, 4096)
            except OSError:
                data = b""
            loop.call_soon_threadsafe(self._feed, data)
            if not data:
                return

    def _feed(self, data: bytes) -> None:
        if self._eof:
            return
        if not data:
            self._eof = True
            if self._selector:
                asyncio.get_running_loop().remove_reader(self._fd)
                self._selector = False
            if self._buffer:
                self._lines.put_nowait(self._buffer.decode(errors="replace"))
            self._lines.put_nowait(None)
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._lines.put_nowait(line.decode(errors="replace").rstrip("\r"))


async def interactive(
    runner: CallRunner, reader: LineReader, out: Say, *, poll_s: float = 2.0
) -> None:
    """A caller at the terminal: the tree, the queue, the agent, then the survey."""
    out("Type keys (1, or 12345678#) or words to speak; /hangup or Ctrl-D to hang up.")
    out("")
    await runner.start()
    read: asyncio.Task[str | None] | None = None
    told_handoff = False
    try:
        while runner.state.awaiting is not Awaiting.NOTHING:
            if runner.handoff is not None and not told_handoff:
                told_handoff = True
                out(f"[{outcome_line(runner)}; call_id={runner.call_id}]")
            if runner.state.awaiting is Awaiting.INPUT:
                if read is None:
                    read = asyncio.create_task(
                        reader.read(secret=runner.state.secret, mark=PROMPT_MARK)
                    )
                else:
                    # A read begun while on hold (so without a mark) takes the survey's answer.
                    print(PROMPT_MARK, end="", flush=True)
                line = await read
                read = None
                if line is None or line.strip().lower() in HANGUP_WORDS:
                    await runner.send(CallerHangup())
                    continue
                await runner.send(parse_answer(line))
            elif runner.state.awaiting is Awaiting.CENTRE:
                assert runner.call_id is not None
                status = await runner.client.position(runner.call_id)
                await runner.send(
                    QueueStatus(status.state, status.position, status.wait_s, status.callback_offer)
                )
                if runner.state.awaiting is not Awaiting.CENTRE:
                    continue
                if read is None:
                    read = asyncio.create_task(reader.read())
                # Poll again after poll_s, unless the caller types something first.
                done, _ = await asyncio.wait({read}, timeout=poll_s)
                if read in done:
                    line = read.result()
                    read = None
                    if line is None or line.strip().lower() in HANGUP_WORDS:
                        await runner.send(CallerHangup())
                    elif runner.state.phase is Phase.QUEUED:
                        # Keys on hold: the callback key once it was offered; else nothing.
                        await runner.send(parse_answer(line))
                        if not runner.state.callback:
                            out("(you are on hold; type /hangup to hang up)")
                    else:
                        out("(you are on hold; type /hangup to hang up)")
            else:
                raise RuntimeError(f"the engine waits for {runner.state.awaiting.value}")
    finally:
        if read is not None:
            read.cancel()
    if runner.handoff is None or runner.callback:
        out(outcome_line(runner))
    out(f"call_id={runner.call_id}")


async def run_interactive(
    engine: Engine, client: IvrClient, caller_number: str, *, poll_s: float = 2.0
) -> None:
    runner = CallRunner(engine, client, caller_number, say=_print)
    loop = asyncio.get_running_loop()
    with LineReader(sys.stdin.fileno()) as reader:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, reader.interrupt)
        try:
            await interactive(runner, reader, _print, poll_s=poll_s)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)


def _print(text: str) -> None:
    print(text, flush=True)


# Many calls: --calls N --rate R.


@dataclass(frozen=True)
class Caller:
    """Who calls: a customer (their number, account, PIN and language) or, with no account, a
    stranger, who cannot verify and so reaches a person."""

    number: str
    account: str | None = None
    pin: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Persona:
    """How one random caller behaves."""

    wrong_tries: int  # verification tries they get wrong (as many as allowed: never verified)
    hangup_at: int | None  # they hang up at this answer, if they ever lose patience
    speaks: float  # chance of speaking rather than pressing, where the tree listens
    unclear: float  # chance that their words name no scripted intent
    fumbles: float  # chance of pressing a key that is not a choice
    patience_s: float = float("inf")  # seconds of waiting in a queue before hanging up
    answers_survey: bool = True  # whether they stay on the line for the survey


# Waiting callers give up after a time with a long tail: log-normal around the median asked
# for (half give up sooner, a few wait three times as long), as abandonment data shows.
PATIENCE_SPREAD = 0.6
# Most callers answer the survey after a call with an agent.
SURVEY_RATE = 0.8


def random_persona(rng: random.Random, *, patience_s: float = float("inf")) -> Persona:
    """patience_s: the median wait before a queued caller hangs up (inf: never)."""
    # Most callers know their details; a few never get them right (those reach a person).
    wrong = rng.choices([0, 1, 2, 9], weights=[80, 9, 4, 7])[0]
    hangup_at = rng.randint(1, 5) if rng.random() < 0.05 else None
    patience = (
        patience_s * rng.lognormvariate(0.0, PATIENCE_SPREAD)
        if patience_s != float("inf")
        else patience_s
    )
    return Persona(
        wrong_tries=wrong,
        hangup_at=hangup_at,
        speaks=0.2,
        unclear=0.3,
        fumbles=0.06,
        patience_s=patience,
        answers_survey=rng.random() < SURVEY_RATE,
    )


def random_survey_answer(state: State, rng: random.Random) -> Keys:
    """A survey answer: mostly content callers, some not; a quarter had to repeat something."""
    if state.stage == "csat":
        return Keys(rng.choices("12345", weights=[6, 7, 15, 32, 40])[0])
    return Keys("1" if rng.random() < 0.25 else "2")


GENERIC_WORDS = {
    "en": ["I have a question", "I need some help please", "it's complicated"],
    "es": ["tengo una pregunta", "necesito ayuda por favor", "es complicado"],
}


def random_answer(
    engine: Engine,
    state: State,
    persona: Persona,
    rng: random.Random,
    *,
    account: str | None,
    pin: str | None,
    language: str | None = None,
) -> Keys | Speech:
    """A plausible answer to the current question of any flow. account None: a caller with
    no account, whose every try is wrong; language: the caller's, chosen where offered."""
    flow = engine.flow
    node = flow.nodes[state.node]
    if isinstance(node, VerifyNode):
        right = account is not None and pin is not None and state.tries >= persona.wrong_tries
        spec = node.account if state.stage == "account" else node.pin
        if state.stage == "account":
            # A wrong caller types an account that does not exist, so the demo account is
            # never locked by random load.
            digits = account if right and account else "99" + _digits(rng, spec.max_digits - 2)
        else:
            digits = pin if right and pin else _digits(rng, spec.min_digits)
        return Keys(digits + (spec.terminator or ""))
    if isinstance(node, CollectNode):
        if node.input == "words":
            return Speech(rng.choice(GENERIC_WORDS.get(state.language, GENERIC_WORDS["en"])))
        length = rng.randint(node.min_digits, node.max_digits)
        return Keys(_digits(rng, length) + (node.terminator or ""))
    if node.spoken is not None and (not node.options or rng.random() < persona.speaks):
        return Speech(_random_words(flow, node, state.language, persona, rng))
    speaks_it = [k for k, act in node.options.items() if act.set_language == language]
    if language is not None and speaks_it:
        return Keys(speaks_it[0])  # the caller's own language
    if rng.random() < persona.fumbles:
        wrong = [k for k in "0123456789*" if k not in node.options]
        if wrong:
            return Keys(rng.choice(wrong))
    keys = list(node.options)
    # Earlier choices are the commoner ones, as menus are usually ordered.
    weights = [1 / (i + 1) for i in range(len(keys))]
    return Keys(rng.choices(keys, weights=weights)[0])


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(max(n, 1)))


def _random_words(
    flow: Flow, node: MenuNode, language: str, persona: Persona, rng: random.Random
) -> str:
    assert node.spoken is not None
    unclear = flow.matching.unclear_examples.get(language) or GENERIC_WORDS.get(language, [])
    if unclear and rng.random() < persona.unclear:
        return rng.choice(unclear)
    intent = flow.intents[rng.choice(list(node.spoken.intents))]
    examples = intent.examples.get(language)
    if examples:
        return rng.choice(examples)
    keyword = rng.choice(intent.keywords.get(language) or [language])
    return " ".join(tokens(keyword)).replace("*", "")


async def play_random(
    runner: CallRunner,
    rng: random.Random,
    caller: Caller,
    *,
    think_s: float = 0.0,
    patience_s: float = float("inf"),
    poll_s: float = 2.0,
) -> None:
    """One random caller from the first prompt to the end: the tree, then the queue (hanging up
    once their patience is spent), the agent, and most often the survey."""
    persona = random_persona(rng, patience_s=patience_s)
    await runner.start()
    answers = 0
    while runner.state.awaiting is not Awaiting.NOTHING:
        state = runner.state
        if state.awaiting is Awaiting.CENTRE:
            assert runner.call_id is not None
            status = await runner.client.position(runner.call_id)
            await runner.send(QueueStatus(status.state, status.position, status.wait_s))
            waiting = runner.state.phase is Phase.QUEUED
            if waiting and (status.wait_s or 0.0) >= persona.patience_s:
                await runner.send(CallerHangup())  # tired of waiting
            elif runner.state.awaiting is Awaiting.CENTRE:
                await asyncio.sleep(poll_s)
            continue
        if state.awaiting is not Awaiting.INPUT:
            raise RuntimeError(f"the engine waits for {state.awaiting.value}")
        if state.phase is Phase.SURVEY:
            if not persona.answers_survey:
                await runner.send(CallerHangup())
                continue
            await runner.send(random_survey_answer(state, rng))
            continue
        answers += 1
        if persona.hangup_at == answers or answers > MAX_ANSWERS:
            await runner.send(CallerHangup())
            continue
        if think_s:
            # Pacing a demo at a human speed, so supervisors see callers in the tree.
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)
        answer = random_answer(
            runner.engine,
            state,
            persona,
            rng,
            account=caller.account,
            pin=caller.pin,
            language=caller.language,
        )
        await runner.send(answer)


@dataclass
class LoadReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())

    def summary(self) -> list[str]:
        lines = [
            f"{self.done} call(s): "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        ]
        lines.extend(f"error: {e}" for e in self.errors[:10])
        if len(self.errors) > 10:
            lines.append(f"... and {len(self.errors) - 10} more error(s)")
        return lines


class ProgressBar:
    """A one-line progress bar on a stream (a line per tenth when it is not a terminal)."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total = total
        self.stream = stream
        self.width = width
        self._tty = stream.isatty()
        self._last_tenth = -1

    def update(self, report: LoadReport) -> None:
        done = report.done
        filled = self.width * done // max(self.total, 1)
        counts = report.outcomes
        queued = sum(v for k, v in counts.items() if k.startswith("queue "))
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total}"
            f"  queued {queued}  hung up {counts['hung up']}  errors {counts['error']}"
        )
        if self._tty:
            self.stream.write("\r" + line)
            if done == self.total:
                self.stream.write("\n")
        else:
            tenth = 10 * done // max(self.total, 1)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(line + "\n")
        self.stream.flush()


async def place_calls(
    engine: Engine,
    client: IvrClient,
    *,
    calls: int,
    rate: float,
    rng: random.Random,
    callers: Sequence[Caller],
    think_s: float = 0.0,
    patience_s: float = float("inf"),
    poll_s: float = 2.0,
    progress: ProgressBar | None = None,
) -> LoadReport:
    """Start `calls` random calls at `rate` per second; they run at once, each to its end.

    Each is one of `callers`, drawn at random; patience_s is the median wait in a queue
    before a caller hangs up (inf: they wait for ever), poll_s how often a waiting caller
    asks for their position.
    """
    report = LoadReport()
    loop = asyncio.get_running_loop()

    async def one() -> None:
        caller = rng.choice(callers)
        runner = CallRunner(engine, client, caller.number)
        try:
            await play_random(
                runner, rng, caller, think_s=think_s, patience_s=patience_s, poll_s=poll_s
            )
        except (ApiError, httpx.HTTPError, ValueError) as exc:
            # One failed call (a refusal, a timeout, a reply of the wrong shape) is counted
            # and reported; the others go on.
            report.outcomes["error"] += 1
            report.errors.append(f"{type(exc).__name__}: {exc}")
        else:
            report.outcomes[_outcome_key(runner)] += 1
        if progress is not None:
            progress.update(report)

    began = loop.time()
    async with asyncio.TaskGroup() as group:
        for i in range(calls):
            group.create_task(one())
            if i + 1 < calls:
                # Arrivals at a steady rate: scheduled from the start, so delays do not add up.
                await asyncio.sleep(max(0.0, began + (i + 1) / rate - loop.time()))
    return report


def _outcome_key(runner: CallRunner) -> str:
    """How the call ended for the caller: hung up in the tree or in a queue, or served."""
    if runner.handoff is None:
        return "hung up" if runner.hung_up else "ended"
    if runner.hung_up and not runner.connected:
        return f"hung up waiting in {runner.handoff.queue}"
    reason = f" ({runner.escalate_reason})" if runner.escalate_reason else ""
    return f"served by {runner.handoff.queue}{reason}"


def random_callers(
    customers: Sequence[tuple[str, str, str, Sequence[str], str, str]],
    rng: random.Random,
    *,
    strangers: int = 3,
) -> list[Caller]:
    """The callers of a demo day: each customer (name, account, PIN, phones, segment,
    language) from each of their numbers, and a few strangers from numbers nobody knows."""
    callers = [
        Caller(number=phone, account=account, pin=pin, language=language)
        for _, account, pin, phones, _, language in customers
        for phone in phones
    ]
    callers += [Caller(number="+1555" + _digits(rng, 7)) for _ in range(strangers)]
    return callers
