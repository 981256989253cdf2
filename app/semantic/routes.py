"""HTTP routes of the semantic module (thin: parse, call the service, return a model)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/semantic", tags=["semantic"])
