"""The API vocabulary shared by the engine's features: display settings and null handling.

:class:`DisplaySettings` declares the stretch/levels group (stretch, black and white points,
gamma, asinh softening) once; the viewer, the composite channels and overall adjustment, and the
mosaic files derive from it, changing only defaults and bounds where the wire contract differs.
:func:`core_stretch` converts it to the numeric core's :class:`StretchSettings` in one place, and
:func:`resolve_stretch` gives every feature the same rule for an unknown stretch name, with the
policy its contract sets: refused with 400 (the viewer, whose names are exact), or replaced by
``zscale`` after ignoring case and spaces (composite channels, mosaic files), the caller reporting
that fallback in a response header.

The backend sends every key of a request body, with an explicit ``null`` for unset optional
values; :class:`NullMeansDefault` reads such a ``null`` as "use the default", and its schema says
that such a field accepts ``null``. Request models validate scalars strictly, as their schema
says: an integer field refuses ``true``, ``2.5`` and ``"2"``, a boolean refuses ``1`` (422).

:func:`closed_vocabulary` documents a field whose values a service checks itself (400 rather than
FastAPI's 422) as an enum, without changing how it is validated.

:class:`HduSelection` is the choice of the image extension of a file (``hdu_index``, or
``extname`` with ``extver``), shared by the viewer endpoints, the composite channels and the
mosaic files; :meth:`HduSelection.hdu_choice` turns it into the core's
:class:`~app.processing.fits_io.HduChoice`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from app.core.exceptions import InvalidRequestError
from app.core.json_types import JsonInt, json_number
from app.processing.enhancement import STRETCH_NAMES, StretchName, StretchSettings
from app.processing.fits_io import HduChoice

#: What to do with a stretch name outside the vocabulary.
UnknownStretch = Literal["reject", "fallback"]
#: The stretch used instead of an unknown one, where the contract allows a fallback.
FALLBACK_STRETCH: StretchName = "zscale"


def closed_vocabulary(values: Iterable[str | None]) -> Callable[[dict[str, Any]], None]:
    """Return a ``json_schema_extra`` that documents a string field's allowed ``values`` as an enum.

    The string branches of a union (``Literal[...] | str``) become one enum; a ``null`` branch stays.
    The field's validation is unchanged: the service answers for other values itself.
    """
    allowed = [value for value in values if value is not None]

    def extra(schema: dict[str, Any]) -> None:
        branches = schema.get("anyOf")
        if branches is None:
            schema["enum"] = allowed
            return
        others = [branch for branch in branches if branch.get("type") != "string"]
        if not others:
            schema.pop("anyOf")
            schema.update({"type": "string", "enum": allowed})
            return
        schema["anyOf"] = [{"type": "string", "enum": allowed}, *others]

    return extra


def known_values(values: Iterable[str], other: str) -> Callable[[dict[str, Any]], None]:
    """Return a ``json_schema_extra`` for a string field that takes ``values`` and accepts any other string.

    The documented form is ``anyOf: [{enum: values}, {type: string, description: other}]`` (and
    ``null`` where the field has one), so a client offers the known names and may still send another.
    """
    allowed = list(values)

    def extra(schema: dict[str, Any]) -> None:
        others = [branch for branch in schema.pop("anyOf", [schema.copy()]) if branch.get("type") != "string"]
        for key in ("type", "enum", "const"):
            schema.pop(key, None)
        schema["anyOf"] = [{"type": "string", "enum": allowed}, {"type": "string", "description": other}, *others]

    return extra


def _allow_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` widened to accept ``null`` too."""
    if "anyOf" in schema:
        if not any(branch.get("type") == "null" for branch in schema["anyOf"]):
            schema["anyOf"].append({"type": "null"})
        return schema
    keep: dict[str, Any] = {
        key: schema.pop(key) for key in ("title", "description", "default", "examples") if key in schema
    }
    return {"anyOf": [schema, {"type": "null"}], **keep}


class NullMeansDefault(BaseModel):
    """Base model: an explicit ``null`` for a field with a non-null default is replaced by the default."""

    model_config = ConfigDict(strict=True)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Document that every field with a non-null default also accepts ``null`` (read as the default)."""
        json_schema = handler(schema)
        target = handler.resolve_ref_schema(json_schema)
        properties = target.get("properties", {})
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key in properties and not field.is_required() and field.default is not None:
                properties[key] = _allow_null(properties[key])
        return json_schema

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                key: value
                for key, value in data.items()
                if not (value is None and key in cls.model_fields and cls.model_fields[key].default is not None)
            }
        return data


#: Longest EXTNAME a FITS header can hold (a string card's value).
MAX_EXTNAME_CHARS = 68


class HduSelection(NullMeansDefault):
    """Which image extension of a file to read; nothing chosen means the default one.

    The default is the ``SCI`` image HDU when the file has one (JWST and HST products, whatever its
    index), else the first HDU with image data.
    """

    hdu_index: JsonInt = Field(
        default=-1,
        description="Image HDU by its 0-based index; -1 (or null) = the default: the SCI extension when the file "
        "has one, else the first image HDU. An index past the last HDU is 400, an HDU without image data 400.",
    )
    extname: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EXTNAME_CHARS,
        description="Image HDU by its EXTNAME (case-insensitive), e.g. SCI, ERR or WHT; instead of hdu_index. "
        "An unknown name is 400 naming the extensions the file has.",
    )
    extver: Annotated[int, Field(strict=False, ge=1), BeforeValidator(json_number)] | None = Field(
        default=None,
        description="EXTVER of the extname HDU; null = the first HDU of that name. Without extname: 400.",
    )

    def hdu_choice(self) -> HduChoice:
        """Return the core's description of this choice (400 for extver without extname, or both ways at once)."""
        if self.extver is not None and not self.extname:
            raise InvalidRequestError("extver needs an extname")
        if self.extname and self.hdu_index >= 0:
            raise InvalidRequestError("Give either hdu_index or extname, not both")
        index = self.hdu_index if self.hdu_index >= 0 else None
        return HduChoice(index=index, extname=self.extname, extver=self.extver)


class DisplaySettings(NullMeansDefault):
    """Stretch, levels, gamma and asinh softening of one image, channel or mosaic."""

    stretch: StretchName | str = Field(
        default="asinh",
        description="Stretch name (case and spaces ignored).",
        json_schema_extra=known_values(STRETCH_NAMES, "Any other name falls back to zscale (reported in a header)."),
    )
    black_point: float = Field(default=0.0, ge=0.0, le=1.0, description="Black level in stretched space (0-1).")
    white_point: float = Field(default=1.0, ge=0.0, le=1.0, description="White level in stretched space (0-1).")
    gamma: float = Field(default=1.0, gt=0.0, le=5.0, description="Gamma applied after the levels.")
    asinh_a: float = Field(default=0.1, ge=0.001, le=1.0, description="Softening of the asinh stretch.")


def resolve_stretch(
    name: str, *, on_unknown: UnknownStretch, allowed: tuple[str, ...] = STRETCH_NAMES
) -> tuple[str, bool]:
    """Return the stretch to use for ``name`` and whether it is a fallback.

    Raises
    ------
    InvalidRequestError
        ``name`` is unknown and ``on_unknown`` is ``"reject"``.
    """
    if on_unknown == "reject":
        if name not in allowed:
            raise InvalidRequestError(f"Invalid stretch '{name}'. Must be one of: {', '.join(allowed)}")
        return name, False
    key = name.strip().lower()
    if key in allowed:
        return key, False
    return FALLBACK_STRETCH, True


def core_stretch(display: DisplaySettings, stretch: str) -> StretchSettings:
    """Return the numeric core's settings for ``display`` with the resolved ``stretch`` name."""
    return StretchSettings(stretch, display.black_point, display.white_point, display.gamma, display.asinh_a)
