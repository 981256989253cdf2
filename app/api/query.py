"""Query parameters read into a pydantic model, with the contract's 400 for values out of range.

FastAPI answers 422 for a missing or unparsable parameter. The viewer contract wants 400 for a
well-formed value outside its allowed range or set (``gamma=9``, ``cmap=foo``), answered before
any file is looked up. :func:`query_model` builds a dependency whose parameters are the model's
fields (so they appear in the OpenAPI document); FastAPI parses their types, then the model checks
ranges and choices, and a failure becomes :class:`~app.core.exceptions.InvalidRequestError`.
Each parameter is documented with the model's description, bounds and allowed values, written into
the document only (``json_schema_extra``), so that FastAPI does not enforce them with its 422.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from fastapi import Query
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


#: Keywords of a property's JSON schema copied into the documented query parameter.
DOCUMENTED_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "examples")


def _wire_type(annotation: Any) -> Any:
    """Return the type FastAPI parses: the bare type, ``str`` for a union that admits strings."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = tuple(get_args(m)[0] if get_origin(m) is Annotated else m for m in get_args(annotation))
        if str in members:
            return str
        return Union[members]  # noqa: UP007 - built from a tuple of types
    return annotation


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """Return a property's schema without its ``null`` branch (a query string cannot carry ``null``)."""
    branches = [branch for branch in prop.get("anyOf", []) if branch.get("type") != "null"]
    if len(branches) != 1:
        return prop
    return {**branches[0], **{key: value for key, value in prop.items() if key != "anyOf"}}


def _types_only(model: type[BaseModel]) -> inspect.Signature:
    """Copy the model's signature with types only, so FastAPI parses types and the model checks ranges.

    The constraints are kept in the document: each parameter carries the property's description,
    bounds and allowed values as schema text that FastAPI does not enforce.
    """
    signature = inspect.signature(model)
    properties = model.model_json_schema()["properties"]
    parameters = []
    for parameter in signature.parameters.values():
        prop = _without_null(properties.get(parameter.name, {}))
        documented = {key: prop[key] for key in DOCUMENTED_KEYWORDS if key in prop}
        query = Query(description=prop.get("description"), json_schema_extra=documented or None)
        parameters.append(parameter.replace(annotation=Annotated[_wire_type(parameter.annotation), query]))
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
