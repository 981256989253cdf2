"""Cancel a request's handler when its client goes away before the answer starts.

ASGI servers report a client that left as an ``http.disconnect`` message, but only to whoever calls
``receive()``; a handler awaiting a long job never does, so the job would run to its end for nobody
(the .NET ``HttpClient`` gives up after 100 s). :func:`serve_until_disconnect` runs the handler as a
task and, once the request body has been read, listens for the disconnect itself: if the client
leaves before the response has started, the handler is cancelled, and with it the job (the executor
kills the worker process that ran it, or cancels the task on the cluster). The access log then
reports status 499 ("client closed request").

The body is passed through as the handler reads it (never buffered here), so a request with a body
is watched from the moment the handler has read all of it; a request without one (a GET), at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Status logged for a request whose client left before the answer (nginx's convention).
CLIENT_CLOSED_REQUEST = 499


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class _Watch:
    """The request's ``receive`` channel, shared by the handler and the disconnect listener."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.pending: list[Message] = []  # read here before the handler asked for it
        self.listener: asyncio.Task[Message] | None = None
        self.response_started = False

    def listen(self) -> None:
        """Start waiting for the client's next message (after the body, only a disconnect comes)."""
        if self.listener is None:
            self.listener = asyncio.create_task(self._next())

    async def _next(self) -> Message:
        return await self._receive()

    async def receive(self) -> Message:
        """Return the next message of the request: the handler calls this instead of ``receive``."""
        if self.pending:
            return self.pending.pop(0)
        if self.listener is not None:
            return await asyncio.shield(self.listener)
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            self.listen()
        return message


async def serve_until_disconnect(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> bool:
    """Run ``app`` for one HTTP request; return True if it was cancelled because the client left."""
    watch = _Watch(receive)
    if not _has_body(scope):  # its one (empty) body message is there already: read it, then listen
        first = await receive()
        if first["type"] == "http.disconnect":
            return True
        watch.pending.append(first)
        watch.listen()

    async def tracked_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            watch.response_started = True
        await send(message)

    async def handle() -> None:
        await app(scope, watch.receive, tracked_send)

    handler = asyncio.create_task(handle())
    try:
        if await _until_done_or_gone(watch, handler):
            await _stop(handler)
            return True
        await handler
        return False
    finally:
        await _stop(handler)  # the server cancelled us: take the handler down too
        if watch.listener is not None:
            await _stop(watch.listener)


async def _until_done_or_gone(watch: _Watch, handler: asyncio.Task[None]) -> bool:
    """Wait until the handler ends or the answer starts (False), or the client leaves first (True)."""
    while not handler.done():
        waiting: set[asyncio.Future[Any]] = {handler}
        if watch.listener is not None:
            waiting.add(watch.listener)
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED, timeout=None if watch.listener else 0.5)
        if _client_left(watch) and not watch.response_started and not handler.done():
            return True
        if watch.listener is not None and watch.listener.done():
            return False  # the handler owns the rest (a streaming answer listens for itself)
    return False


async def _stop(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _client_left(watch: _Watch) -> bool:
    listener = watch.listener
    if listener is None or not listener.done() or listener.cancelled() or listener.exception() is not None:
        return False
    return listener.result().get("type") == "http.disconnect"
