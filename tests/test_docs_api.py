"""docs/api.md documents every route of both services, and the repository stands on its own.

No server is started: both apps are built and their OpenAPI documents read. Every ``METHOD path``
must appear in docs/api.md. No file of the repository (nor the OpenAPI text) may point at a
document outside it: a relative path to a sibling ``shared`` folder, endpoint codes such as
``(P3)``/``E20``, numbered sections or quirks of that outside contract.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import main
import main_mast
from tests.support.engine_settings import make_settings

REPO = Path(__file__).resolve().parents[1]
API_DOC = REPO / "docs" / "api.md"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}

#: What marks a reference to a document outside the repository.
OUTSIDE_REFERENCES = [
    re.compile(r"\.\./shared|/work/shared|api-contract|design\.md"),
    re.compile(r"\b[PE]\d{1,2}\b"),  # endpoint codes of the outside contract: P3, E20, (P9, legacy)
    re.compile(r"\bcontract\s+(section\s+)?\d", re.IGNORECASE),  # "contract 5.4", "contract section 2.5"
    re.compile(r"\bsections?\s+\d+(\.\d+)*\s+of\s+the\s+contract", re.IGNORECASE),
    re.compile(r"\bquirks?\s+\d+", re.IGNORECASE),
]
SKIPPED_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "data", "out"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".json", ".sh", ".txt", ".lock", ".cfg", ".ini"}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("docs-api") / "data"
    root.mkdir()
    settings = make_settings(root)
    return {"engine": main.create_app(settings).openapi(), "proxy": main_mast.create_app(settings).openapi()}


def _routes(spec: dict[str, Any]) -> list[str]:
    return [
        f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops if method in HTTP_METHODS
    ]


@pytest.mark.parametrize("service", ["engine", "proxy"])
def test_every_route_is_documented(openapi: dict[str, dict[str, Any]], service: str) -> None:
    doc = API_DOC.read_text()
    routes = _routes(openapi[service])
    assert len(routes) > 10
    missing = [route for route in routes if route not in doc]
    assert not missing, f"docs/api.md does not mention: {missing}"


def test_documented_headers_are_the_ones_the_code_sends() -> None:
    doc = API_DOC.read_text()
    code = "\n".join(p.read_text() for p in (REPO / "app").rglob("*.py"))
    sent = set(re.findall(r'"(X-(?:Composite|Mosaic)-[A-Za-z-]+)"', code))
    assert sent, "no X-Composite-*/X-Mosaic-* header found in app/"
    assert not [h for h in sent if h not in doc], "headers sent but not documented"
    for header in ("Retry-After", "X-Request-ID", "X-Cube-Slices", "X-Validation-Errors", "X-Job-Id"):
        assert header in doc
    for section in ("Additions the backend may adopt", "Behaviours kept on purpose", "AuthenticationHeaderValue"):
        assert section in doc


def _repository_text_files() -> list[Path]:
    files = []
    for path in REPO.rglob("*"):
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in path.relative_to(REPO).parts):
            continue
        if path.is_file() and (
            path.suffix in TEXT_SUFFIXES or path.name in {"Makefile", "run"} or "Dockerfile" in path.name
        ):
            files.append(path)
    return files


def _outside_references(text: str) -> list[str]:
    return [match.group(0) for pattern in OUTSIDE_REFERENCES for match in pattern.finditer(text)]


def test_no_file_points_outside_the_repository() -> None:
    # the two tests that spell out the forbidden references themselves
    checkers = {Path(__file__).resolve(), (REPO / "tests" / "test_openapi.py").resolve()}
    files = _repository_text_files()
    assert REPO / "README.md" in files
    assert API_DOC in files
    found = {}
    for path in files:
        if path.resolve() in checkers:
            continue
        hits = _outside_references(path.read_text(errors="replace"))
        if hits:
            found[str(path.relative_to(REPO))] = hits[:5]
    assert not found, found


def test_openapi_text_points_nowhere_outside(openapi: dict[str, dict[str, Any]]) -> None:
    for service, spec in openapi.items():
        assert not _outside_references(json.dumps(spec)), service


def test_the_detector_catches_the_forms_it_is_meant_for() -> None:
    for text in ("see ../shared/api-contract.md", "Search by target (P3)", '"""E17: embed"""', "contract 5.4",
                 "as section 2.5 of the contract says", "(quirk 14)", "contract section 6.14"):  # fmt: skip
        assert _outside_references(text), text
    for text in ("TFORM 1E", "the contract's order", "p99 holds the 99.5th percentile", "HTTP/1.1 200", "E_ALL"):
        assert not _outside_references(text), text


def test_api_doc_is_linked() -> None:
    assert "docs/api.md" in (REPO / "README.md").read_text()
    assert "api.md" in (REPO / "docs" / "architecture.md").read_text()
