"""The `flow check` and `ivr` commands: arguments, exit codes, the printed tree."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from ivr import cli
from ivr.flow import default_flow_path

BRANCH = Path(__file__).parent / "flows" / "branch.yaml"


@pytest.fixture(autouse=True)
def no_tellonce_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The developer's own settings must not leak into these tests.
    for name in ("TELLONCE_FLOW", "TELLONCE_IVR_API_KEY", "TELLONCE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_flow_check_prints_the_default_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["flow", "check"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Acme Bank: OK (3 nodes; languages en, es)"
    assert "billing -> queue billing, card_lost -> queue cards, loans -> queue loans" in lines[1]
    assert lines[3].startswith('language (menu) "Welcome to Acme Bank.')
    assert "├─ press 1: language en; -> identify (verify) account 8 digits then #, PIN 4-6" in out
    assert "│  ├─ verified: -> main (menu)" in out
    assert "press 2: hand off, intent card_lost -> queue cards" in out
    assert "press 0: hand off, escalate caller_requested -> queue escalations" in out
    assert "say anything else: hand off, escalate unscripted -> queue escalations" in out
    assert "2 invalid in a row: hand off, escalate no_match -> queue escalations" in out
    assert "not verified: hand off, escalate verification_failed -> queue escalations" in out
    assert "press 2: language es; -> identify (see above)" in out


def test_flow_check_of_a_file_with_a_branch(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["flow", "check", str(BRANCH)]) == 0
    out = capsys.readouterr().out
    assert "press 1: store stolen='yes'; -> last4 (collect) 4 digits then # -> collected" in out
    assert "press 9: hang up" in out
    assert "say card_lost: -> stolen (see above)" in out


def test_flow_check_uses_tellonce_flow(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELLONCE_FLOW", str(BRANCH))
    assert cli.main(["flow", "check"]) == 0
    assert capsys.readouterr().out.startswith("Branchy: OK")


def test_flow_check_names_the_fault(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    text = default_flow_path().read_text(encoding="utf-8")
    broken.write_text(text.replace("on_success: {goto: main}", "on_success: {goto: menu}"))
    assert cli.main(["flow", "check", str(broken)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "node 'identify', field 'on_success.goto': unknown node 'menu'" in captured.err
    # `main` can no longer be reached, and that is said too.
    assert "node 'main': unreachable from the start node 'language'" in captured.err


def test_flow_check_of_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["flow", "check", "nowhere.yaml"]) == 1
    assert "nowhere.yaml: cannot read the file" in capsys.readouterr().err


def test_register_adds_both_commands_to_a_parser() -> None:
    parser = argparse.ArgumentParser(prog="tellonce")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["ivr", "--server", "http://x", "--keys", "1,2"])
    assert args.func is cli.run_ivr
    assert (args.server, args.keys, args.caller_number) == ("http://x", "1,2", "+15551234567")
    args = parser.parse_args(["ivr", "--calls", "5", "--rate", "2.5", "--api-key", "k"])
    assert (args.calls, args.rate, args.api_key) == (5, 2.5, "k")
    assert parser.parse_args(["flow", "check", "x.yaml"]).func is cli.run_flow_check
    for wrong in (
        ["flow"],
        ["ivr", "--keys", "1", "--calls", "2"],
        ["ivr", "--calls", "0"],
        ["ivr", "--calls", "2", "--rate", "-1"],
    ):
        with pytest.raises(SystemExit) as caught:
            parser.parse_args(wrong)
        assert caught.value.code == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ivr", "--rate", "3"], "--rate goes with --calls"),
        (["ivr", "--keys", "1,oops", "--api-key", "k"], "--keys: answer 2 ('oops')"),
        (["ivr", "--keys", "1"], "no IVR key"),
        (["ivr", "--keys", "1", "--flow", "nowhere.yaml"], "cannot read the file"),
    ],
)
def test_ivr_refuses_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) in (1, 2)
    assert message in capsys.readouterr().err


def test_ivr_says_when_the_server_cannot_be_reached(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        # Bound, never listening: a connection is refused at once.
        code = cli.main(
            ["ivr", "--server", f"http://127.0.0.1:{port}", "--keys", "1", "--api-key", "k"]
        )
    assert code == 1
    assert f"cannot talk to http://127.0.0.1:{port}" in capsys.readouterr().err


def test_the_ivr_key_comes_from_the_option_then_the_environment_then_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app.config

    monkeypatch.setattr(app.config, "resolve_ivr_api_key", lambda: "beside-the-database")
    assert cli.resolve_api_key(None) == "beside-the-database"
    monkeypatch.setenv("TELLONCE_IVR_API_KEY", "from-env")
    assert cli.resolve_api_key(None) == "from-env"
    assert cli.resolve_api_key("given") == "given"


def test_without_a_key_the_ivr_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TELLONCE_IVR_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["ivr", "--keys", "1"]) == 2
    said = capsys.readouterr().err
    assert f"there is none at {tmp_path / 'tellonce.db.secrets.json'}" in said
    assert "run this in the server's folder, or set TELLONCE_DATABASE_URL" in said

    # Told where the server's database is, it finds the key there.
    server_folder = tmp_path / "server"
    server_folder.mkdir()
    monkeypatch.setenv("TELLONCE_DATABASE_URL", f"sqlite+aiosqlite:///{server_folder}/tellonce.db")
    from app.config import Settings, ensure_secrets

    made = ensure_secrets(Settings())
    assert made.ivr_api_key is not None
    assert cli.resolve_api_key(None) == made.ivr_api_key.get_secret_value()


def test_the_key_kept_beside_the_embedded_database_is_found(tmp_path: Path) -> None:
    from app.config import Settings, ensure_secrets

    # What `tellonce serve` does on the embedded default: make the key and keep it in a file.
    made = ensure_secrets(Settings())
    assert made.ivr_api_key is not None
    assert cli.resolve_api_key(None) == made.ivr_api_key.get_secret_value()
