"""The `tellonce ivr` and `tellonce flow check` commands (registered into app.cli's parser)."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

import httpx

from ivr.client import ApiError, IvrClient
from ivr.engine import Engine
from ivr.flow import Action, CollectNode, Flow, FlowError, MenuNode, VerifyNode, load_flow
from ivr.simulator import (
    Caller,
    CallRunner,
    ProgressBar,
    parse_keys,
    place_calls,
    play_keys,
    random_callers,
    run_interactive,
)

DEFAULT_SERVER = "http://127.0.0.1:8000"
DEFAULT_CALLER = "+15551234567"
# The contract's demo customer, which `serve --demo` creates: what random callers type.
DEMO_PIN = "1234"


def register(subparsers: argparse._SubParsersAction) -> None:
    ivr = subparsers.add_parser(
        "ivr",
        help="call the centre through the phone tree (simulator)",
        description=(
            "Play a caller: interactive at the terminal, one scripted call with --keys, "
            "or many random calls with --calls N --rate R."
        ),
    )
    ivr.add_argument(
        "--server", default=DEFAULT_SERVER, metavar="URL", help=f"default {DEFAULT_SERVER}"
    )
    ivr.add_argument(
        "--from",
        dest="caller_number",
        default=DEFAULT_CALLER,
        metavar="NUMBER",
        help=f"the caller's number (default {DEFAULT_CALLER})",
    )
    mode = ivr.add_mutually_exclusive_group()
    mode.add_argument(
        "--keys",
        help='one answer per prompt, comma-separated: digits, #, or "words" '
        "(e.g. '1,12345678#,1234#,2')",
    )
    mode.add_argument("--calls", type=_positive_int, metavar="N", help="place N random calls")
    ivr.add_argument(
        "--twilio",
        action="store_true",
        help="with --keys: call through the voice webhook (POST /voice/twilio) as the telephony "
        "platform would, signing with $TELLONCE_TWILIO_AUTH_TOKEN",
    )
    ivr.add_argument(
        "--public-url",
        metavar="URL",
        help="with --twilio: the URL the platform calls, which is signed (default: "
        "$TELLONCE_PUBLIC_URL, else --server)",
    )
    ivr.add_argument(
        "--hold",
        type=_not_negative_float,
        default=0.0,
        metavar="S",
        help="with --twilio: seconds to stay on hold in a queue, until an agent answers (0)",
    )
    ivr.add_argument(
        "--rate", type=_positive_float, metavar="R", help="with --calls: calls per second (2)"
    )
    ivr.add_argument(
        "--api-key",
        help="the IVR key (default: $TELLONCE_IVR_API_KEY, else the key kept beside the "
        "embedded database)",
    )
    ivr.add_argument(
        "--flow", metavar="FILE", help="phone-tree file (default: $TELLONCE_FLOW, else built in)"
    )
    ivr.add_argument(
        "--account",
        help="with --calls: every caller is this account's holder (default: the demo "
        "customers, of both languages and every segment, and a few unknown numbers)",
    )
    ivr.add_argument("--pin", default=DEMO_PIN, help="with --account: that account's PIN")
    ivr.add_argument(
        "--patience",
        type=_positive_float,
        default=90.0,
        metavar="S",
        help="with --calls: median seconds a caller waits in a queue before hanging up (90)",
    )
    ivr.add_argument("--seed", type=int, help="with --calls: repeatable random paths")
    ivr.add_argument(
        "--think",
        type=_not_negative_float,
        default=0.0,
        metavar="S",
        help="with --calls: seconds a caller takes per answer, on average (0)",
    )
    ivr.add_argument(
        "--poll",
        type=_positive_float,
        default=2.0,
        metavar="S",
        help="seconds between a waiting caller's queue-position checks (2)",
    )
    ivr.set_defaults(func=run_ivr)

    flow = subparsers.add_parser("flow", help="phone-tree files")
    flow_commands = flow.add_subparsers(dest="flow_command", metavar="COMMAND", required=True)
    check = flow_commands.add_parser("check", help="validate a phone-tree file and print its tree")
    check.add_argument("file", nargs="?", help="default: $TELLONCE_FLOW, else the built-in flow")
    check.set_defaults(func=run_flow_check)


def _callers(args: argparse.Namespace, rng: random.Random) -> list[Caller]:
    """Who calls in a --calls run: one account's holder, or the demo day's callers."""
    if args.account is not None:
        return [Caller(number="+1555" + str(rng.randrange(10**7)).zfill(7), account=args.account,
                       pin=args.pin)]  # fmt: skip
    from app.demo import CUSTOMERS  # the demo data the server loads with `serve --demo`

    return random_callers(CUSTOMERS, rng)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _not_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _flow_path(given: str | None) -> str | None:
    return given or os.environ.get("TELLONCE_FLOW") or None


def resolve_api_key(given: str | None) -> str | None:
    """--api-key, else $TELLONCE_IVR_API_KEY, else the key kept beside the embedded database."""
    if given:
        return given
    env = os.environ.get("TELLONCE_IVR_API_KEY")
    if env:
        return env
    from app.config import resolve_ivr_api_key  # the backend's settings; only needed here

    return resolve_ivr_api_key()


def _no_key() -> str:
    """Where the key was looked for, and how to give it: the server keeps it beside its own
    database, which is wherever the server was started unless TELLONCE_DATABASE_URL says."""
    from app.config import Settings

    try:
        path = Settings().secrets_path()
    except ValueError:
        path = None
    where = (
        f"; the server on the embedded default keeps it in {path.name} beside its database, "
        f"and there is none at {path.resolve()}: run this in the server's folder, or set "
        "TELLONCE_DATABASE_URL as the server has it"
        if path is not None
        else ""
    )
    return f"no IVR key: pass --api-key or set TELLONCE_IVR_API_KEY{where}"


def run_flow_check(args: argparse.Namespace) -> int:
    try:
        flow = load_flow(_flow_path(args.file))
    except FlowError as exc:
        print(f"tellonce flow check: {exc}", file=sys.stderr)
        return 1
    for line in render_tree(flow):
        print(line)
    return 0


def run_ivr(args: argparse.Namespace) -> int:
    def fail(message: str, code: int = 2) -> int:
        print(f"tellonce ivr: {message}", file=sys.stderr)
        return code

    if args.calls is None and args.rate is not None:
        return fail("--rate goes with --calls")
    if args.twilio:
        return _run_twilio(args, fail)
    try:
        flow = load_flow(_flow_path(args.flow))
    except FlowError as exc:
        return fail(str(exc), 1)
    answers = None
    if args.keys is not None:
        try:
            answers = parse_keys(args.keys)
        except ValueError as exc:
            return fail(f"--keys: {exc}")
    api_key = resolve_api_key(args.api_key)
    if not api_key:
        return fail(_no_key())
    engine = Engine(flow)

    async def main() -> int:
        async with IvrClient(args.server, api_key) as client:
            if answers is not None:
                runner = CallRunner(engine, client, args.caller_number, say=_print)
                await play_keys(runner, answers, _print, poll_s=args.poll)
                _print(f"call_id={runner.call_id}")
                return 0
            if args.calls is not None:
                rate = args.rate or 2.0
                rng = random.Random(args.seed)
                report = await place_calls(
                    engine,
                    client,
                    calls=args.calls,
                    rate=rate,
                    rng=rng,
                    callers=_callers(args, rng),
                    think_s=args.think,
                    patience_s=args.patience,
                    poll_s=args.poll,
                    progress=ProgressBar(args.calls, sys.stderr),
                )
                for line in report.summary():
                    _print(line)
                return 1 if report.errors else 0
            _print(f"Calling {args.server} from {args.caller_number} ({flow.name}).")
            await run_interactive(engine, client, args.caller_number, poll_s=args.poll)
            return 0

    # Interactive calls hang up on Ctrl-C themselves; an interrupt here stops --keys or --calls.
    return _run(main, args.server, fail)


def _run_twilio(args: argparse.Namespace, fail: Callable[[str, int], int]) -> int:
    """The loop-back caller: the voice webhook driven as the platform drives it."""
    from ivr.loopback import LoopbackCall, play

    if args.keys is None:
        return fail("--twilio plays one call: give its answers with --keys", 2)
    try:
        answers = parse_keys(args.keys)
    except ValueError as exc:
        return fail(f"--keys: {exc}", 2)
    token = os.environ.get("TELLONCE_TWILIO_AUTH_TOKEN")
    if not token:
        return fail("--twilio signs with the auth token: set TELLONCE_TWILIO_AUTH_TOKEN", 2)
    public = args.public_url or os.environ.get("TELLONCE_PUBLIC_URL") or None

    async def main() -> int:
        call = LoopbackCall(args.server, token, args.caller_number, public_url=public)
        try:
            await play(call, answers, _print, hold_s=args.hold)
        finally:
            await call.aclose()
        _print(f"call_sid={call.sid}")
        return 0

    return _run(main, args.server, fail)


def _run(
    main: Callable[[], Coroutine[Any, Any, int]], server: str, fail: Callable[[str, int], int]
) -> int:
    """Run a caller to its end; an interrupt, a refusal or a lost server is one line and a code."""
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except ApiError as exc:
        return fail(f"the server refused: {exc}", 1)
    except httpx.HTTPError as exc:
        return fail(f"cannot talk to {server}: {exc or type(exc).__name__}", 1)


def _print(text: str) -> None:
    print(text, flush=True)


def render_tree(flow: Flow) -> list[str]:
    """The flow as an indented tree from its start node; a node met again is referred to."""
    lang = flow.default_language
    lines = [
        f"{flow.name}: OK ({len(flow.nodes)} nodes; languages {', '.join(flow.languages)})",
        "intents: "
        + ", ".join(f"{name} -> queue {queue}" for name, queue in flow.intent_queues.items()),
        "",
    ]
    shown: set[str] = set()

    def node_line(node_id: str) -> str:
        node = flow.nodes[node_id]
        if isinstance(node, VerifyNode):
            detail = (
                f"account {_digits_text(node.account.min_digits, node.account.max_digits)}"
                f"{_then(node.account.terminator)}, PIN "
                f"{_digits_text(node.pin.min_digits, node.pin.max_digits)}"
                f"{_then(node.pin.terminator)}, {node.attempts} tries"
            )
        elif isinstance(node, CollectNode):
            kind = (
                "words"
                if node.input == "words"
                else _digits_text(node.min_digits, node.max_digits) + _then(node.terminator)
            )
            detail = (
                f"{kind} -> collected[{node.save_as!r}]: {_short(flow.text(node.prompt, lang))}"
            )
        else:
            detail = _short(flow.text(node.prompt, lang))
        return f"{node_id} ({node.type}) {detail}"

    def branches(node_id: str) -> Iterator[tuple[str, Action]]:
        node = flow.nodes[node_id]
        if isinstance(node, MenuNode):
            for key, action in node.options.items():
                yield f"press {key}", action
            if node.spoken is not None:
                for intent, action in node.spoken.intents.items():
                    yield f"say {intent}", action
                yield "say anything else", node.spoken.otherwise
            yield f"{node.max_invalid} invalid in a row", node.on_invalid
        elif isinstance(node, CollectNode):
            yield "answered", node.next
            yield f"{node.max_invalid} invalid in a row", node.on_invalid
        else:
            yield "verified", node.on_success
            yield "not verified", node.on_failure

    def walk(node_id: str, indent: str) -> None:
        shown.add(node_id)
        items = list(branches(node_id))
        for i, (label, action) in enumerate(items):
            last = i == len(items) - 1
            head = indent + ("└─ " if last else "├─ ")
            below = indent + ("   " if last else "│  ")
            text = f"{head}{label}: {_action_text(flow, action)}"
            if action.goto is None:
                lines.append(text)
            elif action.goto in shown:
                lines.append(f"{text}{action.goto} (see above)")
            else:
                lines.append(text + node_line(action.goto))
                walk(action.goto, below)

    lines.append(node_line(flow.start))
    walk(flow.start, "")
    return lines


def _action_text(flow: Flow, action: Action) -> str:
    parts = []
    if action.set_language:
        parts.append(f"language {action.set_language}")
    if action.store:
        parts.append("store " + ", ".join(f"{k}={v!r}" for k, v in action.store.items()))
    if action.say is not None:
        parts.append(f"say {_short(flow.text(action.say, flow.default_language), 30)}")
    if action.goto is not None:
        outcome = "-> "
    elif action.hangup:
        outcome = "hang up"
    elif action.escalate is not None:
        intent = f"intent {action.intent}, " if action.intent else ""
        outcome = f"hand off, {intent}escalate {action.escalate} -> queue escalations"
    else:
        outcome = f"hand off, intent {action.intent} -> queue {flow.queue_for(action.intent)}"
    return "; ".join([*parts, outcome]) if parts else outcome


def _digits_text(low: int, high: int) -> str:
    return f"{low} digits" if low == high else f"{low}-{high} digits"


def _then(terminator: str | None) -> str:
    return f" then {terminator}" if terminator else ""


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return f'"{text}"' if len(text) <= limit else f'"{text[: limit - 3]}..."'


def main(argv: Sequence[str] | None = None) -> int:
    """These two commands alone, for running without the backend's CLI."""
    parser = argparse.ArgumentParser(prog="tellonce")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
