"""What one call may hold. Every event about a call carries its whole context, so each list a
caller or an agent can grow is capped, and the context itself is kept under a size."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from fastapi.exceptions import RequestValidationError
from pydantic_core import to_json

from app.calls.schemas import CallContext, HandoffIn
from app.config import Settings
from app.errors import Conflict


class Grown(StrEnum):
    """A list of the call context that a change added to."""

    notes = "notes"
    steps = "steps"
    transfers = "transfers"
    asked_again = "asked_again"


# What a call's context may gain after the last addition checked against its budget: a customer
# bound by a verification, with their effort sum; that customer's earlier calls with their last
# notes cut short, and promises (at most context.PROMISES); the call's own single fields (a
# state, times, a wrap, its effort). All of them at their largest fit (tests/unit/test_bounds.py), so no event about
# a call carries more than TELLONCE_MAX_CALL_CONTEXT_BYTES plus this.
SLACK_BYTES = 28 * 1024


def phone_tree_share(settings: Settings) -> int:
    """Half the budget: the call's steps may fill the context up to this, so that a long walk
    through the tree leaves room for the notes of the people who take the call. A handoff's
    answers and words are held to it on their own; any handoff the schema allows in plain text
    takes under 31 KB."""
    return settings.max_call_context_bytes // 2


def check(settings: Settings, found: CallContext, data: str, grew: Collection[Grown]) -> None:
    """Refuse (409) an addition that took a list of the call past its cap, or its context (data:
    found as JSON, what its events carry) past its size. Only the lists that grew are judged, so
    a cap lowered later never blocks the other lists of a call that holds more already."""
    if Grown.notes in grew and len(found.notes) > settings.max_notes_per_call:
        raise Conflict(f"the call has {settings.max_notes_per_call} notes, the most a call keeps")
    if Grown.transfers in grew and len(found.transfers) > settings.max_transfers_per_call:
        raise Conflict(
            f"the call was transferred {settings.max_transfers_per_call} times, "
            "the most a call keeps"
        )
    if Grown.asked_again in grew and len(found.asked_again) > settings.max_asked_again_per_call:
        raise Conflict(
            f"the call has {settings.max_asked_again_per_call} fields asked again, "
            "the most a call keeps"
        )
    if Grown.steps in grew and len(found.ivr_path) > settings.max_steps_per_call:
        raise Conflict(
            f"the call has {settings.max_steps_per_call} phone-tree steps, the most a call keeps"
        )
    size = len(data.encode())
    if Grown.steps in grew:
        budget = phone_tree_share(settings)
        if size > budget:
            raise Conflict(
                f"the call's context would take {size} bytes, past the {budget} the phone tree "
                "may fill; no more steps are kept"
            )
    elif size > settings.max_call_context_bytes:
        raise Conflict(
            f"the call's context would take {size} bytes, past the "
            f"{settings.max_call_context_bytes} a call may carry; a shorter text may fit"
        )


def _too_long(loc: tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 in the shape of the schemas' own, for a limit that a setting decides."""
    return RequestValidationError([{"loc": ("body", *loc), "msg": message, "type": "too_long"}])


def check_note(settings: Settings, text: str | None, field: str) -> None:
    """A note (or a transfer's or a wrap's, which become notes) within TELLONCE_MAX_NOTE_CHARS."""
    limit = settings.max_note_chars
    if text is not None and len(text) > limit:
        raise _too_long((field,), f"String should have at most {limit} characters")


def check_handoff(settings: Settings, data: HandoffIn) -> None:
    """What a handoff adds to the context (the collected answers and the caller's words) within
    the phone tree's share; the schema's own limits keep any ASCII handoff far within it."""
    size = len(to_json(data.collected)) + len(to_json(data.utterance))
    limit = phone_tree_share(settings)
    if size > limit:
        raise _too_long(
            ("collected",),
            f"collected and utterance take {size} bytes of JSON, more than the {limit} allowed",
        )
