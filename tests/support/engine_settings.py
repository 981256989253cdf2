"""Settings of an engine app on a local storage root, for tests, scripts and benchmarks.

One place for the settings every engine test module used to spell out: local storage at ``root``
(MAST downloads and the semantic index below it), the S3 read cache in ``<tmp>/cache`` (``tmp``
defaults to the root's parent), the composite channel cache in ``<tmp>/composite-cache``, the
thread executor and plain-text logs.
"""

from __future__ import annotations

from pathlib import Path

from app.core.settings import Settings


def make_settings(root: Path, tmp: Path | None = None, **overrides: object) -> Settings:
    """Settings for an engine on the local storage ``root``; ``overrides`` are further settings by alias."""
    base = root.parent if tmp is None else tmp
    values: dict[str, object] = {
        "STORAGE_PROVIDER": "local",
        "STORAGE_BASE_PATH": root,
        "MAST_DOWNLOAD_DIR": root / "mast",
        "SEMANTIC_DATA_DIR": root / "semantic",
        "STORAGE_TEMP_CACHE_DIR": base / "cache",
        "COMPOSITE_CACHE_DIR": base / "composite-cache",
        "ENGINE_EXECUTOR": "thread",
        "LOG_FORMAT": "text",
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]
