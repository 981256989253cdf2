"""Structured logging and the per-request middleware (request id, access log, body limit).

Log records are emitted with constant messages and their variable parts as fields; the JSON
formatter writes one object per line (ISO-8601 time with milliseconds and zone, the pid, the
traceback inside the object as ``exc_info``). Every line of a process goes through the one handler
installed by :func:`configure_logging`: uvicorn's own loggers too, when uvicorn is started with
``--log-config app/core/uvicorn_logging.json`` (whose handler factory is :func:`uvicorn_handler`),
and the engine's worker processes (:func:`worker_logging`). The middleware is plain ASGI so that it
never buffers streaming responses; it logs the access lines of probes (``/health``, ``/ready``,
``/metrics``) at DEBUG.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException

from app.core.disconnect import CLIENT_CLOSED_REQUEST, serve_until_disconnect
from app.core.settings import get_settings

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

#: Record attributes that are not extra fields (uvicorn's ``color_message`` repeats the message with ANSI codes).
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "color_message"}
HANDLER_NAME = "jwst-engine"
#: Paths whose access lines are logged at DEBUG: probes polled every few seconds.
QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


_TRACEBACK_HEAD = "Traceback (most recent call last):"


def message_and_traceback(record: logging.LogRecord, formatter: logging.Formatter) -> tuple[str, str | None]:
    """Return the record's message and its traceback text, if any.

    A traceback arrives as ``exc_info``, or as the message itself where uvicorn logs one it got as
    text (a failed lifespan startup): then the message becomes the traceback's last line (the
    exception) and the whole text is the traceback.
    """
    message = record.getMessage()
    trace = formatter.formatException(record.exc_info) if record.exc_info else None
    if trace is None and message.lstrip().startswith(_TRACEBACK_HEAD):
        lines = [line for line in message.strip().splitlines() if line.strip()]
        message, trace = lines[-1].strip(), message.strip()
    return message, trace


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message, request id, pid, extras.

    ``time`` is ISO-8601 in UTC with milliseconds (``2026-12-06T21:12:00.123+00:00``); a traceback
    is the string field ``exc_info``, so a record is always exactly one line.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one JSON object on one line."""
        message, trace = message_and_traceback(record, self)
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "request_id": request_id_var.get(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if trace is not None:
            payload["exc_info"] = trace
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str)


#: C0/C1 control characters and DEL written as escapes, so that hostile values (a MAST file name,
#: a request path) can neither forge a log line with a newline nor drive a terminal with ANSI codes.
_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}


def escape_control(value: object) -> str:
    r"""Return ``str(value)`` with every control character escaped (``\n``, ``\x1b``, ...)."""
    return str(value).translate(_CONTROL_ESCAPES)


class TextFormatter(logging.Formatter):
    """Human-readable variant: message followed by ``key=value`` fields, one line per record.

    Control characters in the message and the fields are escaped; traceback lines (the only
    multi-line part) are indented with ``|`` so that none of them can pass for a record.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line, followed by its indented traceback lines if any."""
        fields = " ".join(
            f"{k}={escape_control(v)}" for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")
        )
        message, trace = message_and_traceback(record, self)
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: "
        line += f"{escape_control(message)} [{request_id_var.get()}] {fields}".rstrip()
        if trace is not None:
            line += "".join(f"\n  | {escape_control(part)}" for part in trace.splitlines())
        return line


_configured: dict[str, str] = {}


def configure_logging(level: str = "INFO", fmt: str = "json") -> logging.Handler:
    """Install one stream handler on the root logger (idempotent) and return it."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name(HANDLER_NAME)
    root.handlers = [h for h in root.handlers if h.get_name() != HANDLER_NAME] + [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log duplicates ours.
    logging.getLogger("uvicorn.access").disabled = True
    _configured.update(level=level, fmt=fmt)
    return handler


def _log_uncaught(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
    logging.getLogger("app.crash").critical("uncaught_exception", exc_info=(kind, value, trace))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        logging.getLogger("app.crash").critical(
            "uncaught_exception",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            extra={"thread": args.thread.name if args.thread else None},
        )


def configure_process_logging(level: str, fmt: str) -> logging.Handler:
    """Configure logging for a whole service process: the handler, warnings and uncaught errors.

    Beyond :func:`configure_logging`, Python warnings and the tracebacks of uncaught exceptions
    (the main thread and other threads) become log records, so nothing reaches stderr unformatted.
    """
    handler = configure_logging(level, fmt)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught
    return handler


def worker_logging() -> Callable[[], object] | None:
    """Return a picklable call that gives a worker process this process's logging, if configured."""
    if not _configured:
        return None
    return partial(configure_process_logging, _configured["level"], _configured["fmt"])


def uvicorn_handler() -> logging.Handler:
    """Build the root handler for uvicorn's ``--log-config`` (``app/core/uvicorn_logging.json``).

    uvicorn applies its logging configuration before it imports the app, in its supervisor and in
    every worker; this factory reads ``LOG_LEVEL`` and ``LOG_FORMAT`` from the settings, so that
    uvicorn's own lines (startup, errors, tracebacks) use the app's format from the first line on.
    Settings that fail to validate fall back to JSON at INFO here; the app then reports the error.
    """
    try:
        settings = get_settings()
        level, fmt = settings.log_level, settings.log_format
    except ValidationError:
        level, fmt = "INFO", "json"
    return configure_process_logging(level, fmt)


access_logger = logging.getLogger("app.access")


class RequestContextMiddleware:
    """Give each request an id (``X-Request-ID``), log one access line, refuse oversize bodies.

    A handler whose client leaves before the answer starts is cancelled (status 499 in the log).
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection; only HTTP requests are tagged, logged and size-limited."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _is_safe_id(incoming) else uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                await _send_413(send_wrapper, self.max_body_bytes)
                return
            limited = _limited_receive(receive, self.max_body_bytes)
            if await serve_until_disconnect(self.app, scope, limited, send_wrapper):
                status_holder["status"] = CLIENT_CLOSED_REQUEST
        except _BodyTooLarge:
            await _send_413(send_wrapper, self.max_body_bytes)
        finally:
            path = scope.get("path", "")
            access_logger.log(
                logging.DEBUG if path in QUIET_PATHS else logging.INFO,
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": path,
                    "status": status_holder["status"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` so that FastAPI's body parsing turns it into a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"Request body larger than {limit} bytes")


def _is_safe_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value)


def _limited_receive(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge(limit)
        return message

    return wrapped


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"Request body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
