"""TwiML answers and the platform's request signature (Twilio's documented scheme)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The engine's languages as the platform's text-to-speech and speech recognition name them; a
# code not here is passed on as the flow file writes it.
SAY_LANGUAGES = {
    "en": "en-US",
    "es": "es-MX",
    "fr": "fr-FR",
    "de": "de-DE",
    "it": "it-IT",
    "pt": "pt-BR",
}


def signature(token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """X-Twilio-Signature: HMAC-SHA1 keyed with the auth token over the full URL the platform
    called followed by each POST parameter's name and value, sorted by name (then value)."""
    text = url
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    for name in sorted(grouped):
        for value in sorted(grouped[name]):
            text += name + value
    digest = hmac.new(token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed(token: str, url: str, params: Iterable[tuple[str, str]], given: str | None) -> bool:
    if not given:
        return False
    expected = signature(token, url, params)
    return hmac.compare_digest(expected.encode(), given.encode())


def say_language(language: str) -> str:
    return SAY_LANGUAGES.get(language, language)


@dataclass(frozen=True)
class Gather:
    action: str
    language: str
    keys_only: bool = False  # a PIN: keys alone, never sent to speech recognition
    num_digits: int | None = None  # a menu of one-key options needs no #
    timeout_s: int = 5  # silence before the turn ends as if nothing was said


@dataclass(frozen=True)
class Wait:
    next_url: str
    pause_s: int


@dataclass(frozen=True)
class Dial:
    target: str  # "+15551234567" or "client:NAME"


Next = Gather | Wait | Dial | None  # None: the call is over, hang up


def render(prompts: Sequence[str], language: str, then: Next) -> str:
    """One turn: the prompts said in the caller's language, then what the platform does next."""
    response = ET.Element("Response")
    lang = say_language(language)

    def say(parent: ET.Element) -> None:
        for prompt in prompts:
            ET.SubElement(parent, "Say", language=lang).text = prompt

    if isinstance(then, Gather):
        attrs = {
            "input": "dtmf" if then.keys_only else "dtmf speech",
            "action": then.action,
            "method": "POST",
            "finishOnKey": "#",
            "timeout": str(then.timeout_s),
            "language": lang,
        }
        if not then.keys_only:
            attrs["speechTimeout"] = "auto"
        if then.num_digits is not None:
            attrs["numDigits"] = str(then.num_digits)
        say(ET.SubElement(response, "Gather", attrs))
        # The caller said and pressed nothing: the same turn, as silence.
        ET.SubElement(response, "Redirect", method="POST").text = then.action
    elif isinstance(then, Wait):
        say(response)
        ET.SubElement(response, "Pause", length=str(then.pause_s))
        ET.SubElement(response, "Redirect", method="POST").text = then.next_url
    elif isinstance(then, Dial):
        say(response)
        dial = ET.SubElement(response, "Dial")
        if then.target.startswith("client:"):
            ET.SubElement(dial, "Client").text = then.target.removeprefix("client:")
        else:
            ET.SubElement(dial, "Number").text = then.target
    else:
        say(response)
        ET.SubElement(response, "Hangup")
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(response, encoding="unicode")
