"""Both apps as real uvicorn processes: root, health and a documented OpenAPI schema."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import LiveServer

SERVICES = {
    "main": (
        {"message": "JWST Data Processing Engine", "status": "running"},
        {"status": "healthy", "service": "jwst-processing-engine"},
        1,
    ),
    "main_mast": (
        {"message": "JWST MAST Proxy Service", "status": "running"},
        {"status": "healthy", "service": "jwst-mast-proxy"},
        2,
    ),
}


@pytest.fixture(scope="module", params=sorted(SERVICES))
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LiveServer]]:
    root: Path = tmp_path_factory.mktemp("data")
    env = {
        "STORAGE_BASE_PATH": str(root),
        "MAST_DOWNLOAD_DIR": str(root / "mast"),
        "SEMANTIC_DATA_DIR": str(root / "semantic"),
        "ENGINE_WORKERS": "1",
    }
    module = request.param
    with LiveServer(module, env=env, workers=SERVICES[module][2]) as server:
        yield module, server


def test_root_and_health_bodies(live: tuple[str, LiveServer]) -> None:
    module, server = live
    root, health, _ = SERVICES[module]
    assert httpx.get(f"{server.url}/").json() == root
    reply = httpx.get(f"{server.url}/health")
    assert reply.status_code == 200
    assert reply.json() == health
    assert reply.headers["content-type"] == "application/json"
    assert len(reply.headers["x-request-id"]) == 16


def test_openapi_documents_every_route(live: tuple[str, LiveServer]) -> None:
    _, server = live
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert schema["info"]["title"]
    assert schema["info"]["version"]
    assert schema.get("tags")
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert operation.get("description"), f"{method.upper()} {path} has no description"
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_access_log_line_with_request_id(live: tuple[str, LiveServer]) -> None:
    _, server = live
    httpx.get(f"{server.url}/", headers={"X-Request-ID": "trace-me-42"})
    deadline = time.monotonic() + 10
    while "trace-me-42" not in server.logs() and time.monotonic() < deadline:
        time.sleep(0.05)  # the access line is written right after the response is sent
    line = next(line for line in server.logs().splitlines() if "trace-me-42" in line)
    assert "path=/ " in line
    assert "status=200" in line


def test_unknown_route_is_404_json(live: tuple[str, LiveServer]) -> None:
    _, server = live
    reply = httpx.get(f"{server.url}/no/such/route")
    assert reply.status_code == 404
    assert reply.json() == {"detail": "Not Found"}
