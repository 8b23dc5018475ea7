"""Schemathesis over /openapi.json with each role's credential: no 500, no answer outside its
documented statuses and schemas. Run by .ci/run; `--examples` bounds the cases per route.

    python3 scripts/fuzz_api.py [--examples 10] [--seed N]

It serves the demo centre (`tellonce serve --demo`) on a fresh SQLite file in a temporary
folder, signs in a supervisor and an agent, and runs schemathesis once per credential: the
supervisor's token, the agent's, and the IVR key.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
# Signing out would end the token the rest of the run uses: it has tests of its own.
EXCLUDED_PATHS = "^/api/auth/(sign-out|logout)$"
DEADLINE_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"fuzz: the server exited with {server.returncode} (log above)")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("fuzz: the server did not come up")


def token(base_url: str, username: str) -> str:
    r = httpx.post(
        f"{base_url}/api/auth/token", data={"username": username, "password": "demo"}, timeout=10
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def schemathesis(base_url: str, who: str, credential: str, args: argparse.Namespace) -> bool:
    print(f"== schemathesis as {who}", flush=True)
    command = [
        "schemathesis",
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {credential}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(args.examples),
        "--exclude-path-regex",
        EXCLUDED_PATHS,
        # One worker: hypothesis's threads trip over CPython 3.11's AST checks.
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--output-truncate",
        "true",
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    # In the temporary folder: schemathesis leaves a folder of its own where it runs.
    return subprocess.run(command, check=False, cwd=args.folder).returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10, help="cases per route and phase")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tellonce-fuzz-") as folder:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        ivr_key = secrets.token_urlsafe(32)
        env = {
            **os.environ,
            "TELLONCE_DATABASE_URL": f"sqlite+aiosqlite:///{Path(folder) / 'tellonce.db'}",
            "TELLONCE_IVR_API_KEY": ivr_key,
        }
        log_path = Path(folder) / "server.log"
        log = open(log_path, "wb")  # noqa: SIM115 (closed below)
        server = subprocess.Popen(
            ["tellonce", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_until_up(base_url, server)
            except SystemExit:
                print(log_path.read_text(errors="replace"), file=sys.stderr)
                raise
            # The supervisor last: they may disable the agent whose token the agent's run uses.
            credentials = {
                "the IVR": ivr_key,
                "an agent": token(base_url, "alice"),
                "a supervisor": token(base_url, "super"),
            }
            args.folder = folder
            results = [schemathesis(base_url, who, c, args) for who, c in credentials.items()]
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
        served = log_path.read_text(errors="replace")
        if "Traceback" in served:
            print(served, file=sys.stderr)
            print("fuzz: the server logged a traceback", file=sys.stderr)
            return 1
    if not all(results):
        print("fuzz: schemathesis found failures (above)", file=sys.stderr)
        return 1
    print("fuzz: no failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
