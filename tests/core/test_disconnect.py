"""Cancel-on-disconnect at the ASGI level: which requests are cancelled, and which are left alone."""

from __future__ import annotations

import asyncio
from typing import Any

from app.core.disconnect import serve_until_disconnect

Message = dict[str, Any]


class Client:
    """An ASGI client side: the body in chunks, then (optionally) leaving after ``leave_after`` seconds."""

    def __init__(self, chunks: list[bytes], leave_after: float | None) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        for index, chunk in enumerate(chunks):
            self.messages.put_nowait({"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1})
        self.leave_after = leave_after
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.messages.empty() and self.leave_after is not None:
            await asyncio.sleep(self.leave_after)
            return {"type": "http.disconnect"}
        if self.messages.empty():
            await asyncio.Event().wait()  # a client that stays
        return await self.messages.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def scope(body: bool) -> dict[str, Any]:
    headers = [(b"content-length", b"5")] if body else []
    return {"type": "http", "method": "POST" if body else "GET", "path": "/x", "headers": headers}


def slow_app(log: list[str], *, read_body: bool, seconds: float = 5.0) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if read_body:
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            log.append(f"body={body.decode()}")
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        log.append("answered")

    return app


def test_client_leaving_after_the_body_cancels_the_handler() -> None:
    log: list[str] = []
    client = Client([b"he", b"llo"], leave_after=0.05)
    cancelled = asyncio.run(
        serve_until_disconnect(slow_app(log, read_body=True), scope(True), client.receive, client.send)
    )
    assert cancelled is True
    assert log == ["body=hello", "cancelled"]
    assert client.sent == []


def test_client_leaving_a_get_cancels_the_handler() -> None:
    log: list[str] = []
    client = Client([b""], leave_after=0.05)
    cancelled = asyncio.run(
        serve_until_disconnect(slow_app(log, read_body=False), scope(False), client.receive, client.send)
    )
    assert cancelled is True
    assert log == ["cancelled"]


def test_a_client_that_stays_gets_its_answer_and_the_handler_sees_its_body() -> None:
    log: list[str] = []
    client = Client([b"hello"], leave_after=None)
    app = slow_app(log, read_body=True, seconds=0.05)
    cancelled = asyncio.run(serve_until_disconnect(app, scope(True), client.receive, client.send))
    assert cancelled is False
    assert log == ["body=hello", "answered"]
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]


def test_a_started_answer_is_not_cancelled() -> None:
    log: list[str] = []

    async def streaming(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.2)  # the client leaves meanwhile; the stream's own logic decides
        await send({"type": "http.response.body", "body": b"tail"})
        log.append("finished")

    client = Client([b""], leave_after=0.01)
    cancelled = asyncio.run(serve_until_disconnect(streaming, scope(False), client.receive, client.send))
    assert cancelled is False
    assert log == ["finished"]


def test_a_handler_reading_a_get_body_gets_the_empty_message() -> None:
    log: list[str] = []
    client = Client([b""], leave_after=None)
    app = slow_app(log, read_body=True, seconds=0.01)
    assert asyncio.run(serve_until_disconnect(app, scope(False), client.receive, client.send)) is False
    assert log == ["body=", "answered"]
