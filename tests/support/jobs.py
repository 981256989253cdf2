"""Call job entry points directly, as a worker would: with a storage whose root holds the files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from app.core.settings import Settings
from app.worker.context import run_in_context

T = TypeVar("T")


def storage_settings(root: Path) -> Settings:
    """Return settings whose local storage root is ``root``."""
    return Settings(STORAGE_BASE_PATH=root, STORAGE_PROVIDER="local")


def run_job(root: Path, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a job entry point with storage rooted at ``root`` (its keys are relative to ``root``)."""
    return run_in_context(storage_settings(root), fn, *args, **kwargs)


def on_file(fn: Callable[..., T], path: Path, /, *args: Any, **kwargs: Any) -> T:
    """Run a job entry point whose first argument is a key, on the file ``path``."""
    return run_job(Path(path).parent, fn, Path(path).name, *args, **kwargs)
