"""Errors of the numeric core: plain ``ValueError`` subclasses whose message a client may read.

The core knows no HTTP and no domain layer. The feature jobs turn these into the domain errors
of :mod:`app.core.exceptions` (see :mod:`app.worker.errors`), so a damaged file, an image with
no data or a budget passed reads the same on every endpoint. A message never carries a local
path or the text of a library's exception.
"""

from __future__ import annotations


class ProcessingError(ValueError):
    """Base of the core's errors; the message is written for the client."""

    default_message = "The data could not be processed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        """The client-facing text."""
        return str(self.args[0])


class InvalidFits(ProcessingError):
    """The file is not readable FITS, or is truncated or damaged."""

    default_message = "File is not a valid FITS file"


class UnsupportedEncoding(InvalidFits):
    """The file is wrapped in a compression the reader does not support (Unix ``compress``, LZW)."""

    default_message = "The file's compression is not supported"


class NoImageData(ProcessingError):
    """No HDU holds usable image data, or the chosen one does not."""

    default_message = "No image data found in FITS file"


class BudgetExceeded(ProcessingError):
    """The work would need more pixels or bytes than its budget allows."""

    default_message = "The data exceeds the configured size limit"


class InvalidInput(ProcessingError):
    """A parameter does not fit the data: an HDU out of range, an unknown column, an empty region."""
