"""uvicorn's HTTP protocol with deadlines on the request head and body.

uvicorn bounds only the idle time between two requests of a keep-alive connection: a client that
connects and sends nothing, or half a request line, or a head and then a body one byte a minute,
holds its connection (and a file descriptor) forever. Both services therefore run uvicorn with
``--http app.core.http_protocol:GuardedHttpToolsProtocol`` (``make run``, the Dockerfiles, the
tests' live servers), which adds two deadlines to the protocol uvicorn already uses:

- the **head** of each request (request line and headers) must arrive within
  ``REQUEST_HEAD_TIMEOUT_SECONDS``, counted from the connection's opening for the first request
  and from its first byte for the next ones on a keep-alive connection (the idle time before it is
  uvicorn's ``--timeout-keep-alive``). Past it the connection is closed, with a 408 when part of
  a head had arrived;
- the **body** must be complete within ``REQUEST_BODY_TIMEOUT_SECONDS`` of the end of the head;
  past it the connection is closed and the application sees the client disconnect.

Why our own subclass rather than another server: uvicorn has no such timeout; hypercorn has one
(``read_timeout``, ``h11_max_incomplete_size``) but changing the server of both services, their
worker model and every test's server for one timer is a larger change than hooking the three
parser callbacks uvicorn's httptools protocol already exposes (``connection_made``,
``on_headers_complete``, ``on_message_complete``). The class is an import string, so
``uvicorn --http`` loads it in every worker process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from functools import lru_cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.settings import get_settings

logger = logging.getLogger("app.connections")

#: The import string to pass to ``uvicorn --http``.
PROTOCOL_IMPORT = "app.core.http_protocol:GuardedHttpToolsProtocol"


@lru_cache(maxsize=1)
def _deadlines() -> tuple[float, float]:
    """Return the head and body deadlines of this process, in seconds."""
    settings = get_settings()
    return settings.request_head_timeout_seconds, settings.request_body_timeout_seconds


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps({"detail": f"Request head not received within {seconds:g} seconds"}).encode()
    head = (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that closes connections whose head or body is too slow."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout, self.body_timeout = _deadlines()
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True
        self._head_started = False

    # --- timers --------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # a pipelined head stalls behind a response in progress: close once that response is sent
            self.cycle.keep_alive = False
            return
        logger.info("request_head_timeout", extra={"client": self.client, "partial": self._head_started})
        if self._head_started:
            self.transport.write(_timeout_response(self.head_timeout))
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if not self.transport.is_closing():
            logger.info("request_body_timeout", extra={"client": self.client})
            self.transport.close()

    # --- protocol and parser callbacks -------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the connection and the deadline of its first request head."""
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        """Start the head deadline on the first byte of a keep-alive connection's next request."""
        if self._awaiting_head and data:
            self._head_started = True
            if self._head_timer is None:
                self._arm_head_timer()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        """Stop the head deadline (the head is complete) and start the body's."""
        self._cancel_head_timer()
        self._awaiting_head = False
        self._head_started = False
        self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """Stop the body deadline (the body is complete); the next bytes begin the next head."""
        self._cancel_body_timer()
        self._awaiting_head = True
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop both deadlines with the connection."""
        self._cancel_head_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)
