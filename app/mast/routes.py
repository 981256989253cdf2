"""HTTP routes of the MAST proxy (thin: parse, call the service, return a model)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/mast", tags=["mast"])
