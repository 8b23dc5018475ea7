"""Settings: one pydantic-settings class, environment prefix TELLONCE_."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./tellonce.db"
SECRETS_SUFFIX = ".secrets.json"
MIN_SECRET_LENGTH = 16


class ConfigError(RuntimeError):
    """The settings cannot run a server (a missing secret outside the embedded default)."""


SUPPORTED_DATABASES = "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DATABASE"


def check_database_url(url: str) -> str:
    """The URL, if Tellonce can use it; else a ValueError that says what to write instead.
    The message never holds the URL's password."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL; write {SUPPORTED_DATABASES}")
    driver = scheme.lower()
    if driver == "sqlite+aiosqlite" or driver == "postgresql+asyncpg":
        return url
    if driver.startswith("sqlite"):
        raise ValueError(f"SQLite needs the aiosqlite driver: write sqlite+aiosqlite://{rest}")
    if driver.split("+")[0] in ("postgresql", "postgres"):
        hidden = make_url(f"postgresql+asyncpg://{rest}").render_as_string(hide_password=True)
        raise ValueError(f"PostgreSQL needs the asyncpg driver: write {hidden}")
    raise ValueError(f"{driver!r} is not supported; write {SUPPORTED_DATABASES}")


def parse_origins(value: str) -> list[str]:
    """Comma-separated origins as browsers send them (scheme://host[:port], lower case, no path);
    a ValueError names the first that is not one."""
    origins = []
    for item in value.split(","):
        origin = item.strip().lower().rstrip("/")
        if not origin:
            continue
        scheme, sep, host = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not host or "/" in host or "@" in host:
            raise ValueError(
                f"{item.strip()!r} is not an origin: write scheme://host[:port], such as "
                "https://console.example.com, comma-separated"
            )
        origins.append(origin)
    return origins


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELLONCE_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    secret_key: SecretStr | None = None
    ivr_api_key: SecretStr | None = None
    offer_timeout_s: float = Field(default=15.0, gt=0)
    wrapup_s: float = Field(default=0.0, ge=0)
    # A call rejected by every agent who could take it goes back to one of them after this.
    reoffer_after_s: float = Field(default=30.0, ge=10, le=60)
    flow: str | None = None
    token_ttl_s: int = Field(default=12 * 3600, gt=0)
    # A slow safety poll of the outbox: a lost bus message only delays an event by this much.
    poll_interval_s: float = Field(default=1.0, gt=0)
    # permessage-deflate on /ws. Off: it costs ~40 KiB of zlib state per socket and a compression
    # per recipient of every event, to save bandwidth a console on the centre's LAN does not lack
    # (docs/BENCHMARKS.md has the figures).
    ws_per_message_deflate: bool = False
    # One JSON object a line for log collectors, or plain text for a developer's terminal.
    log_format: Literal["json", "text"] = "json"
    # Audit entries older than this are deleted (app/audit/service.py, prune).
    audit_retention_days: int = Field(default=90, ge=1, le=36500)
    # The supervisors' reports (app/reports/): a call answered after waiting at most this long
    # counts towards the service level; and the longest period one report may cover, which
    # bounds what one request reads.
    service_level_s: float = Field(default=20.0, gt=0, le=3600)
    report_max_days: int = Field(default=92, ge=1, le=366)
    # How often finished calls are added to the reports' roll-ups (app/reports/rollup.py); a
    # report reads the calls not rolled up yet one by one, so this bounds what it reads so.
    report_rollup_s: float = Field(default=10.0, ge=0.1, le=3600)
    # What one call may hold. Every event about a call carries its whole context, so each list
    # of it is capped and the context itself kept under a size (docs/API.md, "Bounded calls").
    max_notes_per_call: int = Field(default=100, ge=1, le=1000)
    max_note_chars: int = Field(default=2000, ge=1, le=4000)
    max_steps_per_call: int = Field(default=200, ge=1, le=1000)
    max_transfers_per_call: int = Field(default=50, ge=1, le=500)
    # Times agents may record asking again for what the phone tree collected, on one call.
    max_asked_again_per_call: int = Field(default=20, ge=1, le=200)
    # At least 64 KiB: the phone tree's half must hold the largest handoff the schema allows.
    max_call_context_bytes: int = Field(default=64 * 1024, ge=64 * 1024, le=1024 * 1024)
    # A call still in the phone tree with no word from it for this long is abandoned: the phone
    # tree that held it went away (a crash, a lost connection) without hanging up.
    ivr_silence_s: float = Field(default=600.0, ge=5, le=86400)
    # A caller who has waited this long in a queue is offered a callback by the phone tree
    # (GET /api/calls/{id}/position says so); 0: callbacks are never offered.
    callback_offer_after_s: float = Field(default=120.0, ge=0, le=86400)
    # A socket whose client takes nothing for this long while an event waits is closed (4408):
    # a client that never reads would otherwise hold its sender, and the hub's memory, for ever.
    ws_send_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Sockets one user may hold on one instance; a newer one closes the oldest (4409).
    ws_per_user: int = Field(default=5, ge=1, le=100_000)
    # The largest message a client may send; the auth message, the largest, is a few KiB.
    ws_max_message_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    # Messages a client may send in one second (a ping now and then is all a console needs).
    ws_messages_per_s: int = Field(default=10, ge=1, le=1000)
    # Origins whose pages may open /ws, comma-separated (https://console.example.com); empty:
    # the server's own origin only. A client that sends no Origin (no browser) is let through.
    allowed_origins: str = ""
    # Failed sign-ins allowed in any window of SIGNIN_WINDOW_S, per username and per client
    # address; past either, sign-ins answer 429 (app/auth/throttle.py). The address's is high: a
    # centre's agents may all sign in from one office address at the start of a shift.
    signin_failures_per_user: int = Field(default=5, ge=1, le=1000)
    signin_failures_per_address: int = Field(default=100, ge=1, le=1_000_000)
    signin_window_s: int = Field(default=300, ge=1, le=86_400)
    # Sign-ins checked or waiting for a password hash at once on this instance; past it, 503.
    signin_max_pending: int = Field(default=100, ge=1, le=10_000)
    # The bearer token a Prometheus scraper sends to GET /metrics; unset, /metrics answers 404.
    metrics_token: SecretStr | None = None
    # HTTP limits, set for a server exposed to clients directly (docs/DEPLOY.md). The largest
    # legitimate body (a handoff, a note) is a few KiB, and a JWT makes the largest header.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    body_timeout_s: float = Field(default=30.0, gt=0)
    max_header_bytes: int = Field(default=32 * 1024, ge=4096)
    header_timeout_s: float = Field(default=10.0, gt=0)
    keep_alive_s: int = Field(default=5, ge=1)
    # Real phones (app/voice/): the Twilio-style webhook answers only while this is set, and
    # refuses every request not signed with it.
    twilio_auth_token: SecretStr | None = None
    # The base URL the telephony platform calls (https://tellonce.example.com), which is what it
    # signs: behind a proxy the request's own URL differs. Unset: the request's own URL.
    public_url: str | None = None
    # Seconds a waiting caller hears silence between two looks at their place in the queue.
    twilio_hold_s: int = Field(default=5, ge=1, le=60)
    # Above the 10,000 consoles' websockets one instance holds, with room for their requests.
    max_connections: int = Field(default=20_000, ge=1)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("redis_url", "flow", "public_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("secret_key", "ivr_api_key", "metrics_token", mode="before")
    @classmethod
    def _secret_strength(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str) or len(raw) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @field_validator("twilio_auth_token", mode="before")
    @classmethod
    def _token_or_none(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if raw is None or raw == "" else value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value.strip().rstrip("/")
        scheme, sep, rest = url.partition("://")
        if scheme.lower() not in ("http", "https") or not sep or not rest or "@" in rest:
            raise ValueError(
                f"{value!r} is not a base URL: write scheme://host[:port][/path], such as "
                "https://tellonce.example.com"
            )
        return url

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        return ",".join(parse_origins(value))

    @property
    def allowed_origin_set(self) -> frozenset[str]:
        return frozenset(o for o in self.allowed_origins.split(",") if o)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of an SQLite URL, or None (memory or another database)."""
        if not self.is_sqlite:
            return None
        _, _, rest = self.database_url.partition(":///")
        if not rest or rest.startswith(":memory:"):
            return None
        return Path(rest.split("?", 1)[0])

    def secrets_path(self) -> Path | None:
        db = self.sqlite_path()
        return None if db is None else db.with_name(db.name + SECRETS_SUFFIX)


SECRET_NAMES = ("secret_key", "ivr_api_key")


def _read_secrets_file(path: Path) -> dict[str, str]:
    """The keys kept in the file ({} when there is none). A file that cannot be read, is not
    the JSON object written here, or holds a key shorter than the rule is an error: replacing it
    silently would sign every agent out and change the IVR key under the phone tree."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the secrets file {path}: {exc.strerror}") from exc
    fix = "repair it, or remove it to make new keys (every agent then signs in again)"
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(f"the secrets file {path} is not valid JSON: {fix}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the secrets file {path} is not a JSON object: {fix}")
    stored: dict[str, str] = {}
    for name in SECRET_NAMES:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{name} in the secrets file {path} must be at least {MIN_SECRET_LENGTH} "
                f"characters: {fix}"
            )
        stored[name] = value
    return stored


def _write_secrets_file(path: Path, values: dict[str, str], *, replace: bool) -> None:
    """Write the file whole (never half-written for a reader). Unless replace, only if there is
    none: instances starting together on a fresh database each make keys, and the first file
    written must stay, since that instance signs tokens with its keys already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh)
        os.chmod(tmp, 0o600)
        if replace:
            os.replace(tmp, path)
            return
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # creates path only if there is none, whole at once
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def ensure_secrets(settings: Settings) -> Settings:
    """Fill in missing secrets: made once and kept beside an embedded database, else refused."""
    if settings.secret_key is not None and settings.ivr_api_key is not None:
        return settings
    path = settings.secrets_path()
    if path is None:
        raise ConfigError(
            "TELLONCE_SECRET_KEY and TELLONCE_IVR_API_KEY must both be set "
            "when the database is not the embedded SQLite file"
        )
    existed = path.exists()
    stored = _read_secrets_file(path)
    missing = [name for name in SECRET_NAMES if name not in stored]
    if missing:
        for name in missing:
            stored[name] = secrets.token_urlsafe(32)
        _write_secrets_file(path, stored, replace=existed)
        # Another instance may have written its file first: its keys are the ones in use.
        stored = _read_secrets_file(path)
    update: dict[str, SecretStr] = {}
    if settings.secret_key is None:
        update["secret_key"] = SecretStr(stored["secret_key"])
    if settings.ivr_api_key is None:
        update["ivr_api_key"] = SecretStr(stored["ivr_api_key"])
    return settings.model_copy(update=update)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def resolve_ivr_api_key(settings: Settings | None = None) -> str | None:
    """The IVR key for a client on this machine: the environment, else the embedded secrets file."""
    settings = settings or Settings()
    if settings.ivr_api_key is not None:
        return settings.ivr_api_key.get_secret_value()
    path = settings.secrets_path()
    if path is None or not path.exists():
        return None
    return _read_secrets_file(path).get("ivr_api_key")
