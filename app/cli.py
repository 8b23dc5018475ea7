"""The `tellonce` command: serve, migrate, user create, ivr, flow check."""

from __future__ import annotations

import argparse
import asyncio
import logging.config
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from app.config import ConfigError, Settings, ensure_secrets, get_settings

if TYPE_CHECKING:
    from app.db import DbSession


def _settings() -> Settings:
    try:
        return ensure_secrets(get_settings())
    except ConfigError as exc:
        raise SystemExit(f"tellonce: {exc}") from exc
    except OSError as exc:  # the embedded database's folder, for its secrets file
        why = "a file is there" if isinstance(exc, FileExistsError) else exc.strerror
        raise SystemExit(f"tellonce: cannot use the folder {exc.filename}: {why}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"TELLONCE_{'.'.join(map(str, e['loc'])).upper()}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise SystemExit(f"tellonce: bad settings: {problems}") from exc


def _migrate(settings: Settings) -> None:
    """Every command that touches the database migrates it first: a database that cannot be
    reached is said here, in one line, with no traceback."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import DBAPIError

    from app.migrate import upgrade

    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    path = settings.sqlite_path()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "a file is there" if isinstance(exc, FileExistsError) else exc.strerror
            raise SystemExit(f"tellonce: cannot use the folder {exc.filename}: {why}") from None
    try:
        upgrade(settings.database_url)
    except DBAPIError as exc:
        lines = str(exc.orig).strip().splitlines() if exc.orig else []
        reason = lines[0] if lines else type(exc.orig or exc).__name__
        raise SystemExit(f"tellonce: cannot open the database {shown}: {reason}") from None
    except OSError as exc:
        url = make_url(settings.database_url)
        reason = (
            f"nothing answers at {url.host}:{url.port or 5432}; is PostgreSQL running there?"
            if isinstance(exc, ConnectionRefusedError)
            else exc.strerror or str(exc)
        )
        raise SystemExit(f"tellonce: cannot open the database {shown}: {reason}") from None


async def in_transaction(settings: Settings, work: Callable[[DbSession], Awaitable[None]]) -> None:
    """Run work in one transaction of its own: committed if it returns, else undone."""
    from app.db import open_database

    database = open_database(settings.database_url)
    try:
        async with database.session() as session:
            await work(session)
            await session.commit()
    finally:
        await database.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    _migrate(_settings())
    print("tellonce: the database schema is up to date")
    return 0


def _port_is_free(host: str, port: int) -> bool:
    """Whether the server could listen there: checked before anything is printed or loaded.
    SO_REUSEADDR as uvicorn sets it, so that a port a stopped server just left counts free."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return True  # a bad host: uvicorn says so itself
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


async def _has_users(session: DbSession) -> bool:
    from app.users import repository as users

    return await users.any_user(session)


def _first_user_hint(settings: Settings) -> str | None:
    """What to do on a database with no login yet: nobody could sign in."""
    from app.db import open_database

    async def check() -> bool:
        database = open_database(settings.database_url)
        try:
            async with database.session() as session:
                return await _has_users(session)
        finally:
            await database.dispose()

    if asyncio.run(check()):
        return None
    return (
        "tellonce: there is no login yet. Make the first supervisor with\n"
        "  tellonce user create NAME --password PASSWORD --role supervisor\n"
        "(with the same settings as this server), or start with demo data: tellonce serve --demo"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.logs import server_log_config
    from app.main import create_app
    from app.server import server_config

    settings = _settings()
    log_config = server_log_config(settings, level=args.log_level)
    if not _port_is_free(args.host, args.port):
        print(
            f"tellonce: port {args.port} on {args.host} is in use (another Tellonce?); "
            "stop it, or choose another port with --port",
            file=sys.stderr,
        )
        return 1
    # The migration's own lines, and Python's warnings, are logged as the server's are.
    logging.config.dictConfig(log_config)
    logging.captureWarnings(True)
    _migrate(settings)
    if not args.demo:
        hint = _first_user_hint(settings)
        if hint is not None:
            print(hint, file=sys.stderr, flush=True)
    if args.demo:
        from app import demo

        asyncio.run(in_transaction(settings, demo.load))
        base = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
        print(
            "Tellonce demo data loaded.\n"
            f"  Console:    {base}/\n"
            f"  API docs:   {base}/docs\n"
            f"  Supervisor: super / {demo.DEMO_PASSWORD}\n"
            f"  Agents:     alice (billing, cards), bob (cards, loans), "
            f"carol (escalations, billing), password {demo.DEMO_PASSWORD}\n"
            "  Customer:   account 12345678, PIN 1234, phone +15551230001\n"
            f"  A caller:   tellonce ivr --server {base} --from +15551230001\n",
            flush=True,
        )
    config = server_config(
        create_app(settings),
        settings,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=log_config,
    )
    uvicorn.Server(config).run()
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    from app.auth.service import hash_secret
    from app.errors import Conflict, Invalid
    from app.users import service
    from app.users.schemas import UserCreate
    from ivr.flow import load_flow

    try:
        data = UserCreate(
            username=args.username,
            password=args.password,
            display_name=args.name,
            role=args.role,
            skills=[s for s in (args.skills or "").split(",") if s.strip()],
            phone=args.phone,
        )
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
        print(f"tellonce: invalid user: {fields}", file=sys.stderr)
        return 2
    settings = _settings()
    try:
        service.check_skills(data.skills, load_flow(settings.flow).queues)
    except Invalid as exc:
        print(f"tellonce: {exc.detail}", file=sys.stderr)
        return 2
    _migrate(settings)
    # Hashed before the transaction: argon2 takes tens of milliseconds, and a server running
    # on the same SQLite file would wait for this process's lock meanwhile.
    password_hash = hash_secret(data.password)

    async def work(session: DbSession) -> None:
        await service.create(session, data=data, password_hash=password_hash)

    try:
        asyncio.run(in_transaction(settings, work))
    except Conflict as exc:
        print(f"tellonce: {exc.detail}", file=sys.stderr)
        return 1
    print(f"tellonce: created {data.role.value} {data.username}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tellonce", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then serve the API and console")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="load the demo data and print logins")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="bring the database schema up to date and exit")
    migrate.set_defaults(func=cmd_migrate)

    user = sub.add_parser("user", help="manage logins")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create an agent or supervisor login")
    create.add_argument("username")
    create.add_argument("--password", required=True)
    create.add_argument("--role", required=True, choices=["agent", "supervisor"])
    create.add_argument("--skills", default="", help="comma-separated queues, e.g. billing,cards")
    create.add_argument("--name", default=None, help="display name")
    create.add_argument(
        "--phone",
        default=None,
        help="where the phone webhook dials this agent: +15551234567, or client:NAME",
    )
    create.set_defaults(func=cmd_user_create)

    from ivr.cli import register

    register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
