r"""Refuse JSON request bodies that Python's parser accepts but JSON cannot carry (422).

``json.loads`` (which Starlette uses for every body) accepts the literals ``NaN``, ``Infinity`` and
``-Infinity`` and lone UTF-16 surrogates such as ``"\ud800"``. Neither is JSON (RFC 8259), neither
can be written back by a JSON encoder, and a value that reaches a handler fails wherever it is
first encoded: in a 422 that echoes it, in a log line, in a response. Neither Starlette nor
FastAPI has a hook for a stricter parser, so this plain ASGI middleware checks JSON bodies before
the route sees them and answers FastAPI's own ``json_invalid`` 422 for them.

A body whose bytes are not text in the encoding JSON's detection finds (invalid UTF-8, say) gets
the same 422; FastAPI alone would answer a 400 that no route documents.

The check costs little for ordinary bodies: one decode of the bytes, and only a body in which a
byte scan finds one of the literals or an escaped surrogate is parsed a second time, strictly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Bytes that may start a non-JSON constant or an escaped surrogate (``\uD800``-``\uDFFF``).
_SUSPECT = re.compile(rb"NaN|Infinity|\\u[dD][89a-fA-F]")
_METHODS_WITH_BODY = {"POST", "PUT", "PATCH", "DELETE"}


class NotJsonError(ValueError):
    """The body parses in Python but is not JSON; ``pos`` is where, ``reason`` says why."""

    def __init__(self, reason: str, pos: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pos = pos


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def check_json(body: bytes) -> None:
    """Raise :class:`NotJsonError` when ``body`` is not text, or holds ``NaN``/``Infinity`` or a lone surrogate.

    Bodies that are not valid JSON at all are left to FastAPI's own parser and error, except
    bytes that are not text at all.
    """
    try:
        body.decode(json.detect_encoding(body))
    except UnicodeDecodeError as error:
        raise NotJsonError(f"the body is not {error.encoding} text", error.start) from None
    first = _SUSPECT.search(body)
    if first is None:
        return
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError:
        return  # not JSON at all: FastAPI answers its own 422
    except ValueError as error:
        raise NotJsonError(str(error), first.start()) from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise NotJsonError("lone UTF-16 surrogate in a string", first.start()) from None


def _is_json(scope: Scope) -> bool:
    if scope.get("method") not in _METHODS_WITH_BODY:
        return False
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-type":
            media: bytes = value.split(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True  # FastAPI parses a body without a content type as JSON


def not_json_body(error: NotJsonError) -> dict[str, Any]:
    """FastAPI's ``json_invalid`` 422 body for ``error``."""
    entry = {
        "type": "json_invalid",
        "loc": ["body", error.pos],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": error.reason},
    }
    return {"detail": [entry]}


class StrictJsonMiddleware:
    """Buffer JSON request bodies, refuse the ones JSON cannot carry, replay the others."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the body of a JSON request before the route parses it."""
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            check_json(body)
        except NotJsonError as error:
            await _send_422(send, not_json_body(error))
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _send_422(send: Send, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-validation-errors", b"1"),
    ]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": body})
