"""Import rules of the layout, checked on every module of ``app/`` (and shown to catch a violation).

Layers, bottom up: ``app.processing`` (pure numeric core) and ``app.core`` (settings, errors,
executor) know nothing above them; ``app.storage`` knows ``app.core``; ``app.worker`` (what runs
inside a worker) knows core, storage and processing; the features know those and
``app.schemas``; ``app.api`` wires everything for the routes. Features never import each other,
and the proxy (``app.mast``, ``main_mast.py``) never loads an engine module.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("scipy", "reproject", "photutils", "sep", "PIL", "tokenizers", "onnxruntime", "torch", "dask")
FEATURES = ("viewer", "composite", "mosaic", "analysis", "discovery", "semantic")
ENGINE_MODULES = (
    *(f"app.{name}" for name in FEATURES),
    "app.processing",
    "app.worker",
    "app.schemas",
)
WEB = ("fastapi", "starlette")
CLIENTS = ("httpx", "aioboto3", "boto3", "botocore", "requests")
#: Modules below the routes that may import FastAPI: the wiring and the app-building parts of core.
WEB_ALLOWED = (
    "app/api/",
    "app/core/errors.py",
    "app/core/app_factory.py",
    "app/core/logging.py",
    "app/core/auth.py",
    "app/core/docs.py",
    "app/core/operations.py",
    "app/core/openapi.py",
)


def _starts(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imports_of(path: Path) -> Iterator[str]:
    """Every name imported anywhere in ``path`` (functions included), as ``module`` or ``module.name``."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from app.viewer import service`` names app.viewer.service, not the package
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def rule_violations(relative: str, name: str) -> list[str]:
    """Why importing ``name`` from the file ``relative`` (``app/...``) breaks a layout rule; empty when it may."""
    parts = relative.split("/")
    package = parts[1] if len(parts) > 2 else ""
    found: list[str] = []
    if package == "processing" and (
        _starts(name, WEB + CLIENTS) or (name.startswith("app.") and not _starts(name, ("app.processing",)))
    ):
        found.append("the numeric core imports only numeric libraries and itself")
    if package == "core" and _starts(name, ("app.storage", "app.api", "app.mast", "app.schemas", *ENGINE_MODULES)):
        found.append("core is the bottom layer: it imports no storage, wiring, feature or numeric module")
    if package == "storage" and _starts(name, ("app.api", "app.mast", *ENGINE_MODULES)):
        found.append("storage imports only core")
    if package == "worker" and _starts(name, ("app.api", "app.mast", "app.schemas", *(f"app.{f}" for f in FEATURES))):
        found.append("the worker runtime imports no feature and no wiring")
    if package in FEATURES:
        found.extend(_feature_violations(package, parts[-1], name))
    if package == "mast" and (_starts(name, ENGINE_MODULES) or _starts(name, HEAVY)):
        found.append("the proxy never imports an engine module or the numeric stack")
    web_allowed = relative.startswith(WEB_ALLOWED) or parts[-1] == "routes.py"
    if _starts(name, WEB) and not web_allowed:
        found.append("below the routes nothing imports FastAPI")
    return found


def _feature_violations(package: str, filename: str, name: str) -> list[str]:
    """The rules of a feature package: no other feature, and the wiring only from its routes."""
    found: list[str] = []
    others = tuple(f"app.{f}" for f in FEATURES if f != package)
    if _starts(name, (*others, "app.mast")):
        found.append("one feature never imports another")
    if _starts(name, ("app.api",)) and filename != "routes.py":
        found.append("only routes use the wiring")
    if (
        filename == "routes.py"
        and name.startswith("app.")
        and not _starts(name, (f"app.{package}.schemas", f"app.{package}.service", "app.api", "app.schemas"))
    ):
        found.append("routes import their feature's schemas and service, the shared schemas and the wiring only")
    return found


def violations(root: Path) -> list[str]:
    """``file: import (reason)`` for every import under ``root/app`` that breaks a rule."""
    out = []
    for path in sorted((root / "app").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        for name in imports_of(path):
            out.extend(f"{relative}: {name} ({reason})" for reason in rule_violations(relative, name))
    return out


def test_the_layout_rules_hold() -> None:
    assert violations(REPO) == []


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("app/processing/fits_io.py", "from app.core.exceptions import InvalidFitsError\n"),
        ("app/processing/encoding.py", "import fastapi\n"),
        ("app/core/executor.py", "from app.storage.provider import StorageProvider\n"),
        ("app/mosaic/schemas.py", "from app.composite.schemas import ChannelColor\n"),
        ("app/viewer/service.py", "from app.api.deps import StorageDep\n"),
        ("app/viewer/routes.py", "from app.processing import fits_io\n"),
        ("app/mast/search.py", "from app.processing.enhancement import stretch\n"),
        ("app/mast/search.py", "def f():\n    import scipy\n"),
        ("app/analysis/jobs.py", "from fastapi import HTTPException\n"),
    ],
)
def test_a_violating_import_is_caught(tmp_path: Path, relative: str, source: str) -> None:
    target = tmp_path / relative
    target.parent.mkdir(parents=True)
    target.write_text(source)
    found = violations(tmp_path)
    assert len(found) >= 1
    assert found[0].startswith(f"{relative}: ")


def test_mast_proxy_loads_nothing_heavy() -> None:
    code = "import json, sys, main_mast; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in modules if m.split(".")[0] in HEAVY]
    engine = [m for m in modules if _starts(m, ENGINE_MODULES)]
    assert heavy == []
    assert engine == []


def test_main_mast_imports_no_engine_module() -> None:
    names = list(imports_of(REPO / "main_mast.py"))
    assert [n for n in names if _starts(n, ENGINE_MODULES) or _starts(n, HEAVY)] == []
