"""Structured logs: one JSON object a line (python-json-logger), carrying the request id and the
call id of the request being served, with credentials masked; uvicorn's logs go the same way."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.config import Settings

LogFormat = Literal["json", "text"]

# Bound by RequestIdMiddleware for the request being served: every line logged while serving
# it, by any logger (uvicorn's access log included), carries them.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
call_id: ContextVar[int | None] = ContextVar("call_id", default=None)
client_addr: ContextVar[str | None] = ContextVar("client_addr", default=None)

# A client's own id is kept only if it cannot forge or break a log line: bounded, and of
# characters that need no escaping anywhere (a UUID, a trace id, base64).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
_CALL_PATH = re.compile(r"/api/calls/([1-9][0-9]{0,9})(?:/|$)")
_MAX_ID = 2_147_483_647


def new_request_id(offered: str | None) -> str:
    """The client's X-Request-ID if it is sane, else a fresh one."""
    if offered is not None and _SANE_REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def call_id_of(path: str) -> int | None:
    """The call a path under /api/calls/{id} is about."""
    found = _CALL_PATH.match(path)
    if found is None:
        return None
    value = int(found.group(1))
    return value if value <= _MAX_ID else None


class RequestIdMiddleware:
    """Binds the request id (and the call id, under /api/calls/{id}) for the request's lines,
    and returns the id in the X-Request-ID response header (on a websocket, in its handshake)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        offered = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), None)
        rid = new_request_id(offered.decode("latin-1") if offered is not None else None)
        header = (b"x-request-id", rid.encode("ascii"))
        client = scope.get("client")
        rid_token = request_id.set(rid)
        call_token = call_id.set(call_id_of(scope.get("path", "")))
        client_token = client_addr.set(client[0] if client else None)

        async def send_with_id(message: Message) -> None:
            if message["type"] in (
                "http.response.start",
                "websocket.accept",
                "websocket.http.response.start",
            ):
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        await self.app(scope, receive, send_with_id)
        # Left bound when the app raises: Starlette's last-resort handler, outside this
        # middleware, then logs the error with the request's ids. The server runs each request
        # in a task of its own, so nothing outlives it.
        request_id.reset(rid_token)
        call_id.reset(call_token)
        client_addr.reset(client_token)


def context_fields() -> dict[str, Any]:
    """The ids bound for the request being served, if any."""
    fields: dict[str, Any] = {}
    rid = request_id.get()
    if rid is not None:
        fields["request_id"] = rid
        cid = call_id.get()
        if cid is not None:
            fields["call_id"] = cid
    return fields


class Redactor:
    """Masks credentials in a finished log line, whatever logged them: the configured keys,
    bearer tokens and JWTs, argon2 hashes (a 4-digit PIN's hash is a PIN), and password, PIN
    and token values in query strings or forms. Nothing should log them; this is the net."""

    _PATTERN = re.compile(
        r"(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]+"
        r"|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
        r"|\$argon2(?:id|i|d)\$[A-Za-z0-9$=,+/.]+"
        r"|(?P<field>\b(?i:password|pin|access_token|token|secret_key|ivr_api_key)=)[^&\s\"']+"
    )

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # The settings refuse a key under 16 characters: no ordinary text is one. A shorter
        # value, were one ever given, would mask common words, and is left to the patterns.
        self.secrets = [s for s in secrets if len(s) >= 8]

    def __call__(self, line: str) -> str:
        for secret in self.secrets:
            if secret in line:
                line = line.replace(secret, "[redacted]")
        # Every pattern needs one of these: most lines (an access line) are spared the search.
        if "=" in line or "eyJ" in line or "bearer" in line.lower():
            return self._PATTERN.sub(self._mask, line)
        return line

    @staticmethod
    def _mask(found: re.Match[str]) -> str:
        keep = found.group("bearer") or found.group("field") or ""
        return f"{keep}[redacted]"


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line as fields: client, method, path, status."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return {}
    client, method, path, _, status = args
    return {"client": client, "method": method, "path": path, "status": status}


class JsonLogFormatter(JsonFormatter):
    """{"time", "level", "logger", "message", "request_id"?, "call_id"?, ...extras}."""

    def __init__(self, *, secrets: Sequence[str] = ()) -> None:
        # color_message: uvicorn's copy of the message with terminal colours.
        super().__init__(reserved_attrs=[*RESERVED_ATTRS, "color_message"])
        self.redact = Redactor(secrets)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data.update(context_fields())
        log_data.update(_access_fields(record))
        super().add_fields(log_data, record, message_dict)

    def serialize_log_record(self, log_data: dict[str, Any]) -> str:
        return self.redact(super().serialize_log_record(log_data))


class TextLogFormatter(logging.Formatter):
    """For a developer's terminal: time, level, logger, message, then the request's ids."""

    def __init__(self, *, secrets: Sequence[str] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.redact = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = context_fields()
        if fields:
            line += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return self.redact(line)


def make_formatter(format: LogFormat = "json", secrets: Sequence[str] = ()) -> logging.Formatter:
    """The formatter of a log format (the "()" factory of log_config)."""
    if format == "text":
        return TextLogFormatter(secrets=secrets)
    return JsonLogFormatter(secrets=secrets)


def log_config(*, format: LogFormat, level: str, secrets: Sequence[str] = ()) -> dict[str, Any]:
    """A logging.config.dictConfig for the server, uvicorn's log_config included: every logger
    to standard error through one formatter. secrets: values masked wherever they appear."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "tellonce": {"()": make_formatter, "format": format, "secrets": list(secrets)}
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "tellonce",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's own handlers are replaced: its lines reach the root's, as every other.
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.access": {"handlers": [], "propagate": True, "level": level},
            # SQLAlchemy logs statements and their parameters at INFO: never.
            "sqlalchemy": {"level": "WARNING"},
            # Alembic's "Running upgrade" lines, not its list of plugins at every start.
            "alembic": {"level": "WARNING"},
            "alembic.runtime.migration": {"level": level},
        },
    }


def server_log_config(settings: Settings, *, level: str) -> dict[str, Any]:
    """log_config for a server of these settings: TELLONCE_LOG_FORMAT, its keys masked."""
    keys = [k.get_secret_value() for k in (settings.secret_key, settings.ivr_api_key) if k]
    return log_config(format=settings.log_format, level=level, secrets=keys)
