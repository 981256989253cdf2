"""Job entry points raise domain errors only: the numeric core's errors are translated here.

A job runs in a worker process and its exception travels back pickled. The core
(:mod:`app.processing`) raises its own ``ValueError`` subclasses, which know nothing of HTTP;
:func:`job_entry` wraps a feature's entry point so that any of them leaves the worker as the
matching :mod:`app.core.exceptions` class, with the same client-facing message.

It is also the safety net of the process boundary: any other exception (a library's own type,
possibly not even picklable, such as a compression codec's) is logged with its traceback in the
worker and leaves as :class:`InternalError` (a fixed 500); a ``MemoryError`` leaves as a 413.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from app.core.exceptions import (
    DomainError,
    FitsTooLargeError,
    InternalError,
    InvalidFitsError,
    InvalidRequestError,
    NoImageDataError,
    UnsupportedFitsEncodingError,
)
from app.processing.errors import (
    BudgetExceeded,
    InvalidFits,
    InvalidInput,
    NoImageData,
    ProcessingError,
    UnsupportedEncoding,
)

logger = logging.getLogger("app.worker.errors")

P = ParamSpec("P")
T = TypeVar("T")

#: Core error -> domain error (and so -> HTTP status, through :mod:`app.core.errors`).
TRANSLATION: dict[type[ProcessingError], type[DomainError]] = {
    InvalidFits: InvalidFitsError,
    UnsupportedEncoding: UnsupportedFitsEncodingError,
    NoImageData: NoImageDataError,
    BudgetExceeded: FitsTooLargeError,
    InvalidInput: InvalidRequestError,
}


def domain_error(error: ProcessingError) -> DomainError:
    """Return the domain error that stands for ``error``, with the same message."""
    for kind in type(error).__mro__:
        target = TRANSLATION.get(kind)
        if target is not None:
            return target(error.message)
    return InvalidRequestError(error.message)


def job_entry(fn: Callable[P, T]) -> Callable[P, T]:
    """Mark ``fn`` as a job entry point: whatever it raises leaves it as a picklable domain error."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except DomainError:
            raise
        except ProcessingError as error:
            raise domain_error(error) from error
        except MemoryError as error:
            logger.warning("job_out_of_memory", extra={"job": fn.__name__})
            raise FitsTooLargeError("The work needs more memory than one job may use") from error
        except Exception as error:
            logger.exception("job_failed", extra={"job": fn.__name__, "error": type(error).__name__})
            raise InternalError() from None

    return run
