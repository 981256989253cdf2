"""Domain exceptions shared by every layer below the routes.

Code under the routes raises these and never imports FastAPI; :mod:`app.core.errors` maps each
class to an HTTP status in one table. ``detail`` is the client-facing text: it must never carry
an internal exception's message or a local path.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error that has a meaning for the client."""

    default_detail = "Request failed"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        self.detail = detail or self.default_detail
        self.headers = headers or {}
        super().__init__(self.detail)


class InvalidRequestError(DomainError):
    """A parameter is out of range or inconsistent (400)."""


class UnprocessableError(DomainError):
    """The request is well-formed but semantically invalid (422, string detail)."""


class AccessDeniedError(DomainError):
    """A storage key tries to leave the storage root (403)."""

    default_detail = "Access denied: invalid path"


class NotFoundError(DomainError):
    """A storage key, job or resource does not exist (404)."""

    default_detail = "Not found"


class NotAFileError(DomainError):
    """A storage key names a directory (400)."""

    default_detail = "Path is not a file"


class ConflictError(DomainError):
    """The resource is busy in a way that conflicts with the request (409)."""


class PayloadTooLargeError(DomainError):
    """The work or the request body exceeds a configured budget (413)."""

    default_detail = "Request exceeds the configured size limit"


class FitsTooLargeError(PayloadTooLargeError):
    """A FITS array or file is larger than the limit (413)."""


class InvalidFitsError(DomainError):
    """The file is not a readable FITS file, or is truncated (400)."""

    default_detail = "File is not a valid FITS file"


class UnsupportedFitsEncodingError(InvalidFitsError):
    """The file is FITS in a container the engine cannot read, such as Unix ``compress`` (LZW, ``.Z``) (415)."""

    default_detail = "The file's compression is not supported"


class NoImageDataError(DomainError):
    """No HDU with usable 2-D image data (400)."""

    default_detail = "No image data found in FITS file"


class BusyError(DomainError):
    """The concurrency gate is full (429, with Retry-After)."""

    default_detail = "Server is busy, retry later"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(int(retry_after))})
        self.retry_after = retry_after


class WorkerCrashedError(DomainError):
    """A worker process died while running the job, for example out of memory (503)."""

    default_detail = "The processing worker stopped unexpectedly; retry later"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(int(retry_after))})


class ClusterUnavailableError(DomainError):
    """The Dask scheduler cannot be reached, or the connection to it was lost (503, with Retry-After)."""

    default_detail = "The processing cluster is unavailable; retry later"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(int(retry_after))})


class JobTimeoutError(DomainError):
    """A job ran past its deadline (504)."""

    default_detail = "Processing took too long"


class UpstreamTimeoutError(DomainError):
    """An upstream service (MAST, S3) did not answer in time (504)."""

    default_detail = "Upstream service timed out"


class UpstreamError(DomainError):
    """An upstream service is unreachable or answered with an error (502)."""

    default_detail = "Upstream service error"


class InternalError(DomainError):
    """Something failed that is no one's stated fault: a fixed 500, the cause logged where it happened."""

    default_detail = "Internal server error"


class StorageError(DomainError):
    """The storage backend failed in a way that is not the client's fault (503)."""

    default_detail = "Storage is temporarily unavailable"
