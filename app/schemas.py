"""The API vocabulary shared by the engine's features: display settings and null handling.

The backend sends every key of a request body, with an explicit ``null`` for unset optional
values; :class:`NullMeansDefault` reads such a ``null`` as "use the default".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator


class NullMeansDefault(BaseModel):
    """Base model: an explicit ``null`` for a field with a non-null default is replaced by the default."""

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
