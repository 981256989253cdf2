"""Map domain exceptions to HTTP responses, in one place.

Every error body is ``{"detail": "<string>"}`` (validation errors keep FastAPI's array form, as
the contract requires, bounded: at most ``MAX_VALIDATION_ERRORS`` entries, each echoing at most
about ``MAX_ECHO_CHARS`` characters of its input, so a 30 MB body of bad items is not sent back).
An unexpected exception yields a 500 with a fixed message and a logged traceback, never the
exception text.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.core import exceptions as exc

logger = logging.getLogger("app.errors")

#: Status code of each domain exception; the most specific class wins (looked up along the MRO).
STATUS_BY_EXCEPTION: dict[type[exc.DomainError], int] = {
    exc.DomainError: 400,
    exc.InvalidRequestError: 400,
    exc.UnprocessableError: 422,
    exc.AccessDeniedError: 403,
    exc.NotFoundError: 404,
    exc.NotAFileError: 400,
    exc.ConflictError: 409,
    exc.PayloadTooLargeError: 413,
    exc.FitsTooLargeError: 413,
    exc.InvalidFitsError: 400,
    exc.UnsupportedFitsEncodingError: 415,
    exc.NoImageDataError: 400,
    exc.BusyError: 429,
    exc.WorkerCrashedError: 503,
    exc.ClusterUnavailableError: 503,
    exc.JobTimeoutError: 504,
    exc.UpstreamTimeoutError: 504,
    exc.UpstreamError: 502,
    exc.StorageError: 503,
    exc.InternalError: 500,
}

INTERNAL_ERROR_DETAIL = "Internal server error"
MAX_VALIDATION_ERRORS = 50
MAX_ECHO_CHARS = 200
MAX_ECHO_ITEMS = 20
MAX_ECHO_DEPTH = 4


def status_for(error: exc.DomainError) -> int:
    """Return the HTTP status of a domain exception."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_EXCEPTION:
            return STATUS_BY_EXCEPTION[cls]
    return 400


async def _domain_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, exc.DomainError)
    status = status_for(error)
    if isinstance(error, exc.InternalError):  # the detail is fixed whatever the raiser wrote
        logger.error("internal_error", extra={"status": status, "path": request.url.path})
        return JSONResponse({"detail": INTERNAL_ERROR_DETAIL}, status_code=status)
    logger.info(
        "domain_error",
        extra={"status": status, "error": type(error).__name__, "path": request.url.path},
    )
    return JSONResponse({"detail": error.detail}, status_code=status, headers=error.headers)


def clip_input(value: Any, depth: int = 0) -> Any:
    """``value`` as echoed in a 422: long strings cut, long containers shortened, deep ones elided.

    What JSON cannot carry is made text: a non-finite float becomes ``"NaN"``/``"inf"``, a lone
    surrogate in a string ``"?"``.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        value = value.encode("utf-8", "replace").decode("utf-8")
        return value if len(value) <= MAX_ECHO_CHARS else value[:MAX_ECHO_CHARS] + "..."
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_ECHO_DEPTH:
            return "..."
        if isinstance(value, dict):
            return {key: clip_input(item, depth + 1) for key, item in list(value.items())[:MAX_ECHO_ITEMS]}
        return [clip_input(item, depth + 1) for item in value[:MAX_ECHO_ITEMS]]
    return value


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    """One validation error as sent: its input clipped, its context JSON-safe."""
    out = dict(entry)
    if "input" in out:
        out["input"] = clip_input(out["input"])
    if isinstance(out.get("ctx"), dict):
        out["ctx"] = {key: clip_input(value) for key, value in out["ctx"].items()}
    return out


async def _validation_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    logger.info("validation_error", extra={"status": 422, "path": request.url.path, "errors": len(errors)})
    shown = [_shown(entry) for entry in errors[:MAX_VALIDATION_ERRORS]]
    headers = {"X-Validation-Errors": str(len(errors))}
    return JSONResponse({"detail": jsonable_encoder(shown)}, status_code=422, headers=headers)


async def _unexpected_error_handler(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled_error", extra={"path": request.url.path, "error": type(error).__name__})
    return JSONResponse({"detail": INTERNAL_ERROR_DETAIL}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the validation, domain and catch-all handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(exc.DomainError, _domain_error_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)
