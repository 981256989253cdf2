"""The OpenAPI response vocabulary for the routes: error statuses, headers and binary bodies.

Routes import only their feature, the shared schemas and the wiring, so this module hands them
:mod:`app.core.openapi`'s helpers.
"""

from __future__ import annotations

from app.core.openapi import READS_FILES, RUNS_JOBS, binary_content, errors, header

__all__ = ["READS_FILES", "RUNS_JOBS", "binary_content", "errors", "header"]
