"""Settings and secrets: made once beside an embedded database, refused elsewhere."""

from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, ensure_secrets, resolve_ivr_api_key


def test_embedded_default_makes_secrets_once_owner_only(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tellonce.db'}"
    first = ensure_secrets(Settings(database_url=url))
    second = ensure_secrets(Settings(database_url=url))
    assert first.secret_key is not None and first.ivr_api_key is not None
    assert second.secret_key is not None and second.ivr_api_key is not None
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert first.ivr_api_key.get_secret_value() == second.ivr_api_key.get_secret_value()
    assert first.secret_key.get_secret_value() != first.ivr_api_key.get_secret_value()
    (path,) = tmp_path.glob("*.secrets.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The simulator on the same machine finds the IVR key there.
    assert resolve_ivr_api_key(Settings(database_url=url)) == first.ivr_api_key.get_secret_value()
    # Secrets never show in a repr that could reach a log.
    assert first.secret_key.get_secret_value() not in repr(first)


def test_given_secrets_are_kept(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    settings = ensure_secrets(Settings(database_url=url, secret_key="s" * 40, ivr_api_key="k" * 30))  # type: ignore[arg-type]
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == "s" * 40
    assert not list(tmp_path.glob("*.secrets.json"))


def test_other_databases_refuse_to_start_without_both_secrets() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1/test"
    with pytest.raises(ConfigError):
        ensure_secrets(Settings(database_url=url))
    with pytest.raises(ConfigError):
        ensure_secrets(Settings(database_url=url, secret_key="s" * 40))  # type: ignore[arg-type]
    ok = ensure_secrets(Settings(database_url=url, secret_key="s" * 40, ivr_api_key="k" * 30))  # type: ignore[arg-type]
    assert ok.ivr_api_key is not None


def test_environment_names_of_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELLONCE_DATABASE_URL", "sqlite+aiosqlite:///./other.db")
    monkeypatch.setenv("TELLONCE_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("TELLONCE_OFFER_TIMEOUT_S", "7")
    monkeypatch.setenv("TELLONCE_WRAPUP_S", "3")
    monkeypatch.setenv("TELLONCE_FLOW", "/tmp/flow.yaml")
    s = Settings()
    assert s.database_url.endswith("other.db")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert (s.offer_timeout_s, s.wrapup_s, s.flow) == (7, 3, "/tmp/flow.yaml")
    defaults = Settings(_env_file=None, database_url="sqlite+aiosqlite:///./tellonce.db")  # type: ignore[call-arg]
    assert defaults.database_url == "sqlite+aiosqlite:///./tellonce.db"


@pytest.mark.parametrize("value", ["9", "61", "soon"])
def test_reoffer_after_must_be_between_10_and_60_seconds(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TELLONCE_REOFFER_AFTER_S", value)
    with pytest.raises(ValueError, match="reoffer_after_s"):
        Settings()


def test_reoffer_after_defaults_to_30_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELLONCE_REOFFER_AFTER_S", raising=False)
    assert Settings().reoffer_after_s == 30.0
    monkeypatch.setenv("TELLONCE_REOFFER_AFTER_S", "45")
    assert Settings().reoffer_after_s == 45.0


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "is not valid JSON"),
        ('["a", "b"]', "is not a JSON object"),
        (
            '{"secret_key": "x", "ivr_api_key": "yyyyyyyyyyyyyyyyyyyy"}',
            "secret_key in the secrets file",
        ),
        ('{"secret_key": 12345678901234567890}', "secret_key in the secrets file"),
    ],
)
def test_a_corrupt_secrets_file_is_an_error_and_is_kept(
    tmp_path: Path, content: str, says: str
) -> None:
    """Never silently replaced (every agent would be signed out, the IVR key changed), and a
    key from the file is held to the same 16-character rule as one from the environment."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'tellonce.db'}"
    path = tmp_path / "tellonce.db.secrets.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=says) as caught:
        ensure_secrets(Settings(database_url=url))
    assert "remove it to make new keys" in str(caught.value)
    assert path.read_text() == content
    with pytest.raises(ConfigError):
        resolve_ivr_api_key(Settings(database_url=url))


def test_a_new_database_file_is_owner_only(tmp_path: Path) -> None:
    from app.migrate import upgrade

    path = tmp_path / "new" / "tellonce.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_instances_starting_together_keep_the_keys_of_whoever_wrote_the_file_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instances on one fresh embedded database both find no secrets file; the keys the
    second makes must not replace those the first already signs tokens with."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'tellonce.db'}"
    path = tmp_path / "tellonce.db.secrets.json"
    theirs = {"secret_key": "t" * 43, "ivr_api_key": "i" * 43}
    made = iter(["m" * 43, "n" * 43])

    def make_key(_: int) -> str:
        # The other instance writes its file while this one makes its keys.
        if not path.exists():
            path.write_text(json.dumps(theirs))
        return next(made)

    monkeypatch.setattr(secrets, "token_urlsafe", make_key)
    settings = ensure_secrets(Settings(database_url=url))
    assert settings.secret_key is not None and settings.ivr_api_key is not None
    assert settings.secret_key.get_secret_value() == theirs["secret_key"]
    assert settings.ivr_api_key.get_secret_value() == theirs["ivr_api_key"]
    assert json.loads(path.read_text()) == theirs
    assert not list(tmp_path.glob("*.tmp"))


def test_the_twilio_auth_token_is_secret_and_the_public_url_a_base_url() -> None:
    settings = Settings(
        twilio_auth_token="a-twilio-token-0123456789", public_url="https://x.example/"
    )
    assert settings.public_url == "https://x.example"
    assert "a-twilio-token" not in repr(settings) and "a-twilio-token" not in str(settings)
    assert Settings(twilio_auth_token="", public_url="").twilio_auth_token is None
    assert Settings(public_url="").public_url is None
    for bad in ("phones.example.com", "ftp://x.example", "https://user@x.example"):
        with pytest.raises(ValueError):
            Settings(public_url=bad)
