"""Pydantic types that accept exactly what their JSON schema says.

Request models validate strictly (an integer field refuses ``true`` and ``"2"``, a boolean ``1``),
so that a body the published schema calls invalid is refused with 422. Strict integers, however,
also refuse ``2.0``, which JSON Schema counts as an integer: :data:`JsonInt` takes JSON numbers
with no fractional part, and nothing else.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError


def json_number(value: Any) -> Any:
    """Refuse booleans and strings; leave numbers to the integer validator (which refuses ``2.5``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


#: An integer as JSON Schema has it: ``2`` and ``2.0``, never ``true``, ``"2"`` or ``2.5``. Bounds go on the
#: field (``Field(ge=...)``); an item type with bounds puts them before the validator, as ``CalibLevel`` does
#: in :mod:`app.mast.schemas`, or they would reach the schema as raw ``ge``/``le`` keys.
JsonInt = Annotated[int, Field(strict=False), BeforeValidator(json_number)]
