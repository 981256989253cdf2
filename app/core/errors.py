"""Map domain exceptions to HTTP responses, in one place.

Every error body is ``{"detail": "<string>"}`` (validation errors keep FastAPI's array form, as
the contract requires). An unexpected exception yields a 500 with a fixed message and a logged
traceback, never the exception text.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
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
    exc.NoImageDataError: 400,
    exc.BusyError: 429,
    exc.WorkerCrashedError: 503,
    exc.JobTimeoutError: 504,
    exc.UpstreamTimeoutError: 504,
    exc.UpstreamError: 502,
    exc.StorageError: 503,
}

INTERNAL_ERROR_DETAIL = "Internal server error"


def status_for(error: exc.DomainError) -> int:
    """Return the HTTP status of a domain exception."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_EXCEPTION:
            return STATUS_BY_EXCEPTION[cls]
    return 400


async def _domain_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, exc.DomainError)
    status = status_for(error)
    logger.info(
        "domain_error",
        extra={"status": status, "error": type(error).__name__, "path": request.url.path},
    )
    return JSONResponse({"detail": error.detail}, status_code=status, headers=error.headers)


async def _unexpected_error_handler(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled_error", extra={"path": request.url.path, "error": type(error).__name__})
    return JSONResponse({"detail": INTERNAL_ERROR_DETAIL}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the domain and catch-all handlers on ``app``."""
    app.add_exception_handler(exc.DomainError, _domain_error_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)
