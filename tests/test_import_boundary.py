"""Import rules of the design: a light proxy and a pure numeric core."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("scipy", "reproject", "photutils", "sep", "PIL", "tokenizers", "onnxruntime", "torch")
ENGINE_PACKAGES = (
    "app.viewer",
    "app.composite",
    "app.mosaic",
    "app.analysis",
    "app.discovery",
    "app.semantic",
    "app.processing",
)


def test_mast_proxy_imports_nothing_heavy() -> None:
    code = "import json, sys, main_mast; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in modules if m.split(".")[0] in HEAVY]
    engine = [m for m in modules if m.startswith(ENGINE_PACKAGES)]
    assert heavy == [] and engine == []


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_processing_core_is_pure() -> None:
    forbidden = ("fastapi", "starlette", "httpx", "aioboto3", "boto3", "app.storage", "app.core.dependencies")
    for path in (REPO / "app/processing").rglob("*.py"):
        bad = [name for name in _imports(path) if name.startswith(forbidden)]
        assert bad == [], f"{path.relative_to(REPO)} imports {bad}"


def test_mast_package_imports_no_engine_module() -> None:
    for path in (REPO / "app/mast").rglob("*.py"):
        bad = [n for n in _imports(path) if n.startswith(ENGINE_PACKAGES) or n.split(".")[0] in HEAVY]
        assert bad == [], f"{path.relative_to(REPO)} imports {bad}"


def test_below_routes_nothing_imports_fastapi() -> None:
    allowed = {"routes.py", "dependencies.py", "errors.py", "app_factory.py", "logging.py"}
    for path in (REPO / "app").rglob("*.py"):
        if path.name in allowed or path.name.startswith("routes") or path.parent.name == "api":
            continue  # routes and the wiring in app/api/ sit above the services
        bad = [n for n in _imports(path) if n.startswith(("fastapi", "starlette"))]
        assert bad == [], f"{path.relative_to(REPO)} imports {bad}"
