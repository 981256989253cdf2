"""Query parameters read into a pydantic model, with the contract's 400 for values out of range.

FastAPI answers 422 for a missing or unparsable parameter. The viewer contract wants 400 for a
well-formed value outside its allowed range or set (``gamma=9``, ``cmap=foo``), answered before
any file is looked up. :func:`query_model` builds a dependency whose parameters are the model's
fields (so they appear in the OpenAPI document); FastAPI parses their types, then the model checks
ranges and choices, and a failure becomes :class:`~app.core.exceptions.InvalidRequestError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

from app.core.exceptions import InvalidRequestError

M = TypeVar("M", bound=BaseModel)


def describe(error: ValidationError) -> str:
    """Return one client-facing sentence for the first problem of ``error``."""
    first = error.errors(include_url=False)[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    field = ".".join(str(part) for part in first["loc"])
    if not field:
        return message
    return f"Invalid {field}: {message} (got {first.get('input')!r})"


def _types_only(model: type[BaseModel]) -> inspect.Signature:
    """Copy the model's signature without its constraints, so FastAPI parses types and the model checks ranges."""
    signature = inspect.signature(model)
    parameters = []
    for parameter in signature.parameters.values():
        annotation = parameter.annotation
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        parameters.append(parameter.replace(annotation=annotation))
    return signature.replace(parameters=parameters, return_annotation=model)


def query_model(model: type[M]) -> Callable[..., M]:
    """Return a dependency that builds ``model`` from the query string (400 when a value is out of range)."""

    def build(**values: Any) -> M:
        try:
            return model(**values)
        except ValidationError as error:
            raise InvalidRequestError(describe(error)) from None

    build.__signature__ = _types_only(model)  # type: ignore[attr-defined]
    build.__name__ = f"query_{model.__name__}"
    return build
