"""The OpenAPI vocabulary both services share: error answers, response headers, binary bodies.

The OpenAPI documents are the manual the backend generates its client from, so each route lists
only the error statuses it can answer, each with what it means there (:func:`errors`), and the
headers that come with them (``Retry-After`` on 429 and 503, ``X-Validation-Errors`` on 422).
Binary answers declare ``{type: string, format: binary}`` per media type (:func:`binary_content`),
so a generated client returns bytes rather than nothing.

:func:`finish_document` runs once over the built document: it adds ``X-Request-ID`` (set on every
answer by the request-context middleware) to every response of every operation, and gives the 422
that FastAPI adds by itself the body and header this service really sends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

#: One route's ``responses=`` mapping, as FastAPI takes it.
Responses = dict[int | str, dict[str, Any]]


class ErrorBody(BaseModel):
    """The error body of every status but 422: ``{"detail": "<text>"}``."""

    detail: str = Field(description="What went wrong, in one sentence meant for the caller.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "File not found: mast/obs1/img_i2d.fits"}]})


class ValidationIssue(BaseModel):
    """One validation error of a 422 (FastAPI's form)."""

    loc: list[str | int] = Field(description="Where the value is: `body`, `query` or `path`, then the field names.")
    msg: str = Field(description="What is wrong with the value.")
    type: str = Field(description="Machine-readable error kind, e.g. `missing`, `greater_than_equal`.")
    input: Any = Field(default=None, description="The value received (long values cut, deep ones elided).")
    ctx: dict[str, Any] | None = Field(default=None, description="Parameters of the failed rule, e.g. `ge`.")

    model_config = ConfigDict(extra="allow")


class ValidationErrorBody(BaseModel):
    """422 body: the list of validation errors (at most 50; `X-Validation-Errors` has the full count)."""

    detail: list[ValidationIssue] = Field(description="The validation errors, in the order found.")


class UnprocessableBody(BaseModel):
    """422 body of routes with checks of their own: the validation list, or one sentence from a domain check."""

    detail: str | list[ValidationIssue] = Field(
        description="A list of validation errors, or the text of the failed check."
    )


def header(description: str, *, kind: str = "string", required: bool = False) -> dict[str, Any]:
    """Return an OpenAPI header object."""
    return {"description": description, "required": required, "schema": {"type": kind}}


RETRY_AFTER = header("Seconds to wait before retrying.", kind="integer")
VALIDATION_ERRORS = header("Number of validation errors found (the body lists at most 50).", kind="integer")
REQUEST_ID = header(
    "Identifier of the request: the caller's `X-Request-ID` when it is safe (1-64 of `A-Za-z0-9-_.`), "
    "else a new 16-character id. It is on every log line of the request.",
    required=True,
)

#: What each status means when a route does not say more.
MEANINGS: dict[int, str] = {
    400: "Invalid parameter, unreadable file or no image data.",
    401: "Missing or invalid service token (only when `SERVICE_TOKEN` is set).",
    403: "Access denied: the storage key leaves the storage root.",
    404: "The file does not exist.",
    409: "The resource is in a state that does not allow this.",
    413: "Request body larger than `MAX_REQUEST_BODY_BYTES`, or a file or result above its configured limit.",
    415: "The file is compressed with an encoding this service cannot read (`.Z`).",
    422: "Request validation failed: the body or a parameter is missing, malformed or out of range.",
    429: "Too many jobs in flight; retry after `Retry-After` seconds.",
    502: "The upstream service (MAST, its name resolver or S3) failed or answered with an error.",
    503: "A worker stopped, the cluster is unreachable or storage failed; retry later.",
    504: "The job passed its deadline, or the upstream service did not answer in time.",
}

#: Statuses of a route that reads storage keys (the path guard, a missing file, size and encoding limits).
READS_FILES = (400, 403, 404, 413, 415)
#: Statuses of a route whose work runs on the executor (the gate, a worker lost, the deadline).
RUNS_JOBS = (429, 503, 504)


def _entry(status: int, meaning: str, *, domain_422: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"description": meaning}
    if status == 422:
        entry["model"] = UnprocessableBody if domain_422 else ValidationErrorBody
        entry["headers"] = {"X-Validation-Errors": VALIDATION_ERRORS}
        return entry
    entry["model"] = ErrorBody
    if status == 429:
        entry["headers"] = {"Retry-After": {**RETRY_AFTER, "required": True}}
    elif status == 503:
        entry["headers"] = {"Retry-After": RETRY_AFTER}
    return entry


def errors(
    *statuses: int | Iterable[int], meanings: Mapping[int, str] | None = None, domain_422: bool = False
) -> Responses:
    """Return the ``responses=`` entries of the given error statuses.

    Parameters
    ----------
    statuses
        Status codes, or groups of them (:data:`READS_FILES`, :data:`RUNS_JOBS`).
    meanings
        What a status means on this route, where it says more than :data:`MEANINGS`.
    domain_422
        The route has checks of its own that answer 422 with a sentence (not only validation lists).
    """
    meanings = meanings or {}
    flat: set[int] = set()
    for item in statuses:
        flat.update([item] if isinstance(item, int) else item)
    flat.update(meanings)
    return {
        status: _entry(status, meanings.get(status, MEANINGS[status]), domain_422=domain_422) for status in sorted(flat)
    }


def binary_content(*media_types: str) -> dict[str, Any]:
    """Return a ``content`` object declaring each media type as a binary string."""
    return {media: {"schema": {"type": "string", "format": "binary"}} for media in media_types}


def finish_document(app: FastAPI) -> None:
    """Make ``app.openapi()`` add ``X-Request-ID`` to every response of the built document."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if status == "422":
                        _replace_default_422(document, response)
                    response.setdefault("headers", {})["X-Request-ID"] = REQUEST_ID
        _drop_unused(document, ("HTTPValidationError", "ValidationError"))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


_COMPONENTS = "#/components/schemas/"


def _replace_default_422(document: dict[str, Any], response: dict[str, Any]) -> None:
    """Give FastAPI's own 422 entry this service's body (:class:`ValidationErrorBody`) and header."""
    media = response.get("content", {}).get("application/json", {})
    if media.get("schema", {}).get("$ref") != _COMPONENTS + "HTTPValidationError":
        return
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if "ValidationErrorBody" not in schemas:
        generated = ValidationErrorBody.model_json_schema(ref_template=_COMPONENTS + "{model}")
        schemas.update(generated.pop("$defs", {}))
        schemas["ValidationErrorBody"] = generated
    media["schema"] = {"$ref": _COMPONENTS + "ValidationErrorBody"}
    response["description"] = MEANINGS[422]
    response.setdefault("headers", {})["X-Validation-Errors"] = VALIDATION_ERRORS


def _drop_unused(document: dict[str, Any], names: Iterable[str]) -> None:
    """Remove the component schemas ``names`` when nothing refers to them any more."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in names:
        if name in schemas:
            kept = {key: value for key, value in schemas.items() if key != name}
            rest = {**document, "components": {**document["components"], "schemas": kept}}
            if _COMPONENTS + name + '"' not in json.dumps(rest):
                del schemas[name]
