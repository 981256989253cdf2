"""Core errors leave a job entry point as domain errors, also across a process boundary."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from app.core.exceptions import (
    DomainError,
    FitsTooLargeError,
    InternalError,
    InvalidFitsError,
    InvalidRequestError,
    NoImageDataError,
)
from app.processing.errors import BudgetExceeded, InvalidFits, InvalidInput, NoImageData, ProcessingError
from app.worker.errors import domain_error, job_entry


@job_entry
def failing(kind: str) -> int:
    """A job that raises the core error named ``kind`` (module level, so it pickles)."""
    errors: dict[str, ProcessingError] = {
        "fits": InvalidFits("HDU 1 is damaged"),
        "image": NoImageData(),
        "budget": BudgetExceeded("Too big: 5 > 4"),
        "input": InvalidInput("Sort column 'X' not found"),
    }
    if kind in errors:
        raise errors[kind]
    return 7


@pytest.mark.parametrize(
    ("error", "expected", "message"),
    [
        (InvalidFits("HDU 1 is damaged"), InvalidFitsError, "HDU 1 is damaged"),
        (NoImageData(), NoImageDataError, "No image data found in FITS file"),
        (BudgetExceeded("Too big: 5 > 4"), FitsTooLargeError, "Too big: 5 > 4"),
        (InvalidInput("bad column"), InvalidRequestError, "bad column"),
    ],
)
def test_each_core_error_has_its_domain_error(
    error: ProcessingError, expected: type[DomainError], message: str
) -> None:
    translated = domain_error(error)
    assert type(translated) is expected
    assert translated.detail == message


def test_core_errors_are_value_errors() -> None:
    assert issubclass(ProcessingError, ValueError)


def test_a_job_entry_raises_domain_errors_in_process() -> None:
    assert failing("none") == 7
    with pytest.raises(FitsTooLargeError, match="Too big"):
        failing("budget")


def test_the_domain_error_crosses_the_process_boundary() -> None:
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        assert pool.submit(failing, "none").result() == 7
        with pytest.raises(InvalidFitsError, match="HDU 1 is damaged"):
            pool.submit(failing, "fits").result()
        with pytest.raises(InvalidRequestError, match="Sort column"):
            pool.submit(failing, "input").result()


class CodecError(Exception):
    """Stands for a library exception that cannot be pickled (its class is not importable by name)."""


CodecError.__module__ = "_compression"
CodecError.__qualname__ = "CfitsioException"


@job_entry
def crashing(kind: str) -> int:
    """A job that fails with something no table knows (module level, so it pickles)."""
    if kind == "codec":
        raise CodecError("decompression error: secret internals")
    if kind == "memory":
        raise MemoryError
    raise KeyError("secret")


def test_any_other_error_leaves_as_a_picklable_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(InternalError) as raised:
        crashing("codec")
    assert raised.value.detail == "Internal server error"
    assert any(r.message == "job_failed" and r.exc_info for r in caplog.records)
    with pytest.raises(FitsTooLargeError):
        crashing("memory")


def test_an_unpicklable_error_crosses_the_process_boundary_as_internal_error() -> None:
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for kind in ("codec", "other"):
            with pytest.raises(InternalError, match="Internal server error"):
                pool.submit(crashing, kind).result()
