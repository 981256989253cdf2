"""The OpenAPI documents of both services, read as the manual a client is generated from.

Both documents are checked the same way: every request body has an example its own model accepts,
every property and parameter is described, no text cites documents outside the repository, closed
vocabularies are enums, binary answers are binary strings, each route lists only the errors it can
answer with the headers that come with them, and the job links lead to real operations. Then a
client is generated from each document with ``openapi-python-client``, as the backend does with
its own generator, and the binary answers must come out typed.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from tests.support.live_server import LiveServer

SERVICES = ("main", "main_mast")
CITED = re.compile(r"\.\./shared|\((?:P|E)\d+[,)]|\bcontract \d|\bcontract section")
BINARY_TYPES = {"image/png", "image/jpeg", "application/fits", "application/octet-stream"}


def _app(module: str) -> FastAPI:
    app: FastAPI = importlib.import_module(module).app
    return app


@pytest.fixture(scope="module", params=SERVICES)
def service(request: pytest.FixtureRequest) -> tuple[FastAPI, dict[str, Any]]:
    app = _app(request.param)
    return app, app.openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path][method.lower()]
    return operation


def _component(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _enum(schema: dict[str, Any]) -> set[Any]:
    """The values an enum property allows: its own ``enum``, or that of its enum branch."""
    if "enum" in schema:
        return set(schema["enum"])
    branches = [branch for branch in schema.get("anyOf", []) if "enum" in branch]
    assert len(branches) == 1, f"no single enum in {schema}"
    return set(branches[0]["enum"])


def _parameter(document: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    parameters = _operation(document, method, path)["parameters"]
    found: dict[str, Any] = next(p for p in parameters if p["name"] == name)
    return found


SCHEMA_MODULES = (
    "app.viewer.schemas",
    "app.composite.schemas",
    "app.mosaic.schemas",
    "app.analysis.schemas",
    "app.discovery.schemas",
    "app.semantic.schemas",
    "app.async_jobs.schemas",
    "app.mast.schemas",
)


def _models_by_name() -> dict[str, type[BaseModel]]:
    """The request models of both services, by class name (the name of their component)."""
    found: dict[str, type[BaseModel]] = {}
    for module in SCHEMA_MODULES:
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module:
                found[value.__name__] = value
    return found


# --- examples, descriptions, cited documents -----------------------------------------------------------


def test_every_request_body_has_an_example_its_model_accepts(service: tuple[FastAPI, dict[str, Any]]) -> None:
    _, document = service
    models = _models_by_name()
    with_body = [(m, p, op) for m, p, op in _operations(document) if "requestBody" in op]
    assert len(with_body) >= 10
    for method, path, operation in with_body:
        name = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        examples = _component(document, name).get("examples")
        assert examples, f"{method} {path}: the request body has no example"
        for example in examples:
            model = models[name]
            model.model_validate(example)  # raises when the example does not fit its own model
            assert model.model_validate_json(json.dumps(example)) == model.model_validate(example)


def test_every_property_and_parameter_is_described(service: tuple[FastAPI, dict[str, Any]]) -> None:
    _, document = service
    missing = [
        f"{name}.{prop}"
        for name, schema in document["components"]["schemas"].items()
        for prop, spec in schema.get("properties", {}).items()
        if not spec.get("description")
    ]
    missing += [
        f"{method} {path} ?{parameter['name']}"
        for method, path, operation in _operations(document)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description")
    ]
    assert missing == []


def test_no_text_cites_documents_outside_the_repository(service: tuple[FastAPI, dict[str, Any]]) -> None:
    _, document = service
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("description", "summary", "title") and isinstance(value, str):
                    texts.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    assert len(texts) > 100
    assert [text for text in texts if CITED.search(text)] == []
    assert CITED.search("Search by target name (P3)")
    assert CITED.search("see ../shared/x")


# --- closed vocabularies and bounds --------------------------------------------------------------------


def test_closed_vocabularies_are_enums() -> None:
    engine = _app("main").openapi()
    stretches = {"zscale", "asinh", "log", "sqrt", "power", "histeq", "linear"}
    for path in ("/preview/{data_id}", "/histogram/{data_id}"):
        assert _enum(_parameter(engine, "GET", path, "stretch")["schema"]) == stretches
        assert _enum(_parameter(engine, "GET", path, "smooth_method")["schema"]) >= {"", "gaussian", "median"}
    preview_cmap = _enum(_parameter(engine, "GET", "/preview/{data_id}", "cmap")["schema"])
    assert {"grayscale", "gray", "inferno", "viridis"} <= preview_cmap
    assert _enum(_parameter(engine, "GET", "/preview/{data_id}", "format")["schema"]) == {"png", "jpeg"}

    channel = _component(engine, "NChannelConfig")["properties"]
    assert _enum(channel["stretch"]) == {*stretches, "auto"}  # `auto` is documented, other names fall back
    assert _enum(channel["curve"]) == {"linear", "s_curve", "inverse_s", "shadows", "highlights"}
    assert _enum(_component(engine, "OverallAdjustments")["properties"]["stretch"]) == stretches
    assert _enum(_component(engine, "NChannelCompositeRequest")["properties"]["output_format"]) == {"png", "jpeg"}
    mosaic = _component(engine, "MosaicRequest")["properties"]
    assert "inferno" in _enum(mosaic["cmap"])
    assert "foo" not in _enum(mosaic["cmap"])
    assert _enum(mosaic["output_format"]) == {"png", "jpeg", "fits"}
    assert _enum(mosaic["combine_method"]) == {"mean", "sum", "first", "last", "min", "max", "median"}
    detect = _component(engine, "DetectSourcesRequest")["properties"]
    assert _enum(detect["method"]) == {"auto", "daofind", "iraf", "segmentation"}
    region = _component(engine, "RegionStatisticsRequest")["properties"]
    assert _enum(region["region_type"]) == {"rectangle", "ellipse", "polygon"}


def test_bounds_the_code_enforces_are_documented() -> None:
    engine = _app("main").openapi()
    width = _parameter(engine, "GET", "/preview/{data_id}", "width")
    assert (width["schema"]["minimum"], width["schema"]["maximum"]) == (10, 8000)
    composite = _component(engine, "NChannelCompositeRequest")["properties"]["width"]
    assert composite["anyOf"][0]["maximum"] == 4096
    page_size = _parameter(engine, "GET", "/analysis/table-data", "page_size")["schema"]
    assert (page_size["minimum"], page_size["maximum"]) == (1, 500)


def test_bounds_are_json_schema_keywords(service: tuple[FastAPI, dict[str, Any]]) -> None:
    """Pydantic writes a bound it cannot place as a raw ``ge``/``le`` key, which no validator reads."""
    _, document = service
    raw: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("ge", "gt", "le", "lt") and isinstance(value, int | float):
                    raw.append(f"{path}/{key}")
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}/{index}")

    walk(document, "")
    assert raw == []


def test_out_of_range_query_values_keep_their_400() -> None:
    """The documented bounds are text only: the contract's 400 still answers before any file is read."""
    from fastapi.testclient import TestClient

    with TestClient(_app("main")) as client:
        reply = client.get("/preview/x", params={"file_path": "none.fits", "width": 9000})
        assert reply.status_code == 400
        assert "width" in reply.json()["detail"]
        assert client.get("/preview/x", params={"file_path": "none.fits", "cmap": "nope"}).status_code == 400
        assert client.get("/preview/x", params={"file_path": "none.fits", "width": "wide"}).status_code == 422


# --- responses ------------------------------------------------------------------------------------------


def test_binary_answers_are_binary_strings(service: tuple[FastAPI, dict[str, Any]]) -> None:
    _, document = service
    seen = 0
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            for media, spec in response.get("content", {}).items():
                if media in BINARY_TYPES:
                    seen += 1
                    assert spec.get("schema") == {"type": "string", "format": "binary"}, f"{method} {path} {status}"
    if document["info"]["title"].startswith("JWST Data"):
        assert seen >= 9  # preview (2), composite (2), mosaic (3), job result (4)


def test_each_route_lists_only_its_errors(service: tuple[FastAPI, dict[str, Any]]) -> None:
    _, document = service
    for method, path, operation in _operations(document):
        statuses = set(operation["responses"])
        if "requestBody" in operation:
            assert {"413", "422"} <= statuses, f"{method} {path}"
        for status, response in operation["responses"].items():
            assert response["description"], f"{method} {path} {status}"
            headers = response.get("headers", {})
            assert headers["X-Request-ID"]["required"] is True
            if status == "429":
                assert headers["Retry-After"]["required"] is True
                assert headers["Retry-After"]["schema"] == {"type": "integer"}
            if status == "503" and path not in ("/ready",):
                assert "Retry-After" in headers
            if status == "422":
                assert "X-Validation-Errors" in headers
    if "/composite/generate-nchannel" in document["paths"]:
        composite = set(_operation(document, "POST", "/composite/generate-nchannel")["responses"])
        assert "409" not in composite
        assert "502" not in composite
        assert {"400", "403", "404", "413", "415", "422", "429", "503", "504"} <= composite
        assert "409" in _operation(document, "POST", "/jobs/{job_id}/cancel")["responses"]
        assert set(_operation(document, "GET", "/semantic/index-status")["responses"]) == {"200"}
    else:
        search = set(_operation(document, "POST", "/mast/search/coordinates")["responses"])
        assert search == {"200", "413", "422", "502", "504"}
        assert "409" in _operation(document, "POST", "/mast/download/resume/{job_id}")["responses"]
        assert "HTTPValidationError" not in document["components"]["schemas"]


def test_composite_and_mosaic_headers_are_documented() -> None:
    engine = _app("main").openapi()
    composite = _operation(engine, "POST", "/composite/generate-nchannel")["responses"]["200"]["headers"]
    assert {"X-Composite-Grid-Shape", "X-Composite-Cache", "X-Composite-Stretch-Fallback"} <= set(composite)
    mosaic = _operation(engine, "POST", "/mosaic/generate")["responses"]["200"]["headers"]
    assert {"X-Mosaic-Grid-Shape", "X-Mosaic-Blocks", "X-Mosaic-Weighting"} <= set(mosaic)
    preview = _operation(engine, "GET", "/preview/{data_id}")["responses"]["200"]["headers"]
    assert preview["X-Cube-Slices"]["schema"] == {"type": "integer"}


def test_job_links_lead_to_real_operations(service: tuple[FastAPI, dict[str, Any]]) -> None:
    _, document = service
    operation_ids = {operation["operationId"] for _, _, operation in _operations(document)}
    links = [
        link
        for _, _, operation in _operations(document)
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert len(links) >= 3
    for link in links:
        assert link["operationId"] in operation_ids
        assert link["parameters"] == {"job_id": "$response.body#/job_id"}


@pytest.fixture(scope="module")
def proxy_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("openapi-proxy")
    env = {
        "STORAGE_BASE_PATH": str(root),
        "MAST_DOWNLOAD_DIR": str(root / "mast"),
        "MAST_BASE_URL": "http://127.0.0.1:9",
    }
    with LiveServer("main_mast", env=env) as server:
        yield server


def test_the_served_document_is_the_checked_one_and_its_422_is_sent(proxy_live: LiveServer) -> None:
    import jsonschema

    served = httpx.get(f"{proxy_live.url}/openapi.json", timeout=30).json()
    assert served == json.loads(json.dumps(_app("main_mast").openapi()))
    reply = httpx.post(f"{proxy_live.url}/mast/search/coordinates", json={"ra": 400, "dec": 0}, timeout=30)
    assert reply.status_code == 422
    assert reply.headers["X-Validation-Errors"] == "1"
    assert len(reply.headers["X-Request-ID"]) == 16
    documented = _operation(served, "POST", "/mast/search/coordinates")["responses"]["422"]
    schema = {**documented["content"]["application/json"]["schema"], "components": served["components"]}
    jsonschema.validate(reply.json(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"detail": "a sentence"}, schema)


# --- a generated client ---------------------------------------------------------------------------------

GENERATOR_CONFIG = (
    "content_type_overrides:\n"
    "  image/png: application/octet-stream\n"
    "  image/jpeg: application/octet-stream\n"
    "  application/fits: application/octet-stream\n"
)


def _generator() -> str:
    found = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    found = found or shutil.which("openapi-python-client")
    if found is None:
        pytest.skip("openapi-python-client is not installed")
    return found


def _module_name(operation_id: str) -> str:
    return re.sub(r"_+", "_", operation_id).strip("_") + ".py"


@pytest.mark.parametrize("module", SERVICES)
def test_a_generated_client_has_every_operation_typed(module: str, tmp_path: Path) -> None:
    tool = _generator()
    document = _app(module).openapi()
    source = tmp_path / "openapi.json"
    source.write_text(json.dumps(document))
    config = tmp_path / "config.yaml"
    config.write_text(GENERATOR_CONFIG)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = subprocess.run(
        [tool, "generate", "--path", str(source), "--output-path", str(tmp_path / "client"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WARNING" not in run.stdout + run.stderr, run.stdout + run.stderr
    modules = {path.name: path for path in (tmp_path / "client").glob("*/api/*/*.py")}
    for method, path, operation in _operations(document):
        assert _module_name(operation["operationId"]) in modules, f"{method} {path}"
    binary = (
        [
            _operation(document, "GET", "/preview/{data_id}"),
            _operation(document, "POST", "/composite/generate-nchannel"),
            _operation(document, "POST", "/mosaic/generate"),
        ]
        if module == "main"
        else []
    )
    for operation in binary:
        text = modules[_module_name(operation["operationId"])].read_text()
        assert "response_200 = File(" in text
        assert re.search(r"def sync\([^)]*\) -> [^:]*\bFile\b", text, re.S), operation["operationId"]
        assert "Response[Any]" not in text
