"""Request bodies, bounded before anything reads or parses them: 413 past the size limit, 408 when
the body does not arrive in time. Runs before authentication, so no token is needed to be refused."""

from __future__ import annotations

import asyncio

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Receives a request's whole body before the app sees the request, and hands it on in one
    piece; the app then never waits on a slow client, and never holds more than max_bytes."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, streamed = _framing(scope)
        if declared is not None and declared > self.max_bytes:
            # Said up front: refused without reading a byte of it.
            await self._too_large(scope, receive, send)
            return
        if not streamed and not declared:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client is gone: there is nobody to answer
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        await self._too_large(scope, receive, send)
                        return
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            await _refuse(
                scope,
                receive,
                send,
                408,
                f"the request body did not arrive within {self.timeout_s:g} s",
            )
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes} bytes"
        await _refuse(scope, receive, send, 413, detail)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The Content-Length the client declared (None if none or unreadable), and whether the
    body is streamed in chunks of unknown total."""
    declared: int | None = None
    streamed = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                streamed = True  # unknown: counted as it comes
        elif name == b"transfer-encoding":
            streamed = True
    return declared, streamed


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    # The app never reads the rest of the body; uvicorn reads and drops it, and the connection
    # goes on. Not `Connection: close`: uvicorn would close at once on unread data, the kernel
    # would reset the connection and the client could lose this answer. A rest that does not
    # come in time ends the connection (app/server.py, on_response_complete).
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
