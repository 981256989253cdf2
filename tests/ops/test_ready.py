"""``/ready`` of both live services: 200 when healthy, 503 naming the check when storage cannot be written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.live_server import LiveServer


@contextmanager
def storage_gone(root: Path) -> Iterator[None]:
    """Move the storage root away (as an unmounted volume would leave it), then put it back.

    The tests run as root, so permission bits would not stop a write; a missing root does.
    """
    aside = root.with_name(root.name + "-aside")
    root.rename(aside)
    try:
        yield
    finally:
        aside.rename(root)


def _ready(server: LiveServer) -> httpx.Response:
    return httpx.get(f"{server.url}/ready", timeout=90)


def test_engine_ready_then_not_ready_without_storage(engine: LiveServer, engine_root: Path) -> None:
    reply = _ready(engine)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"status": "ready", "checks": {"storage": "ok", "executor": "ok"}}
    with storage_gone(engine_root):
        reply = _ready(engine)
        assert reply.status_code == 503
        assert reply.json() == {"status": "not_ready", "checks": {"storage": "failed", "executor": "ok"}}
        assert str(engine_root) not in reply.text
        health = httpx.get(f"{engine.url}/health")  # liveness does not look at storage
        assert health.status_code == 200
    assert _ready(engine).status_code == 200
    assert "not_ready" in engine.logs()  # the reason is logged, not sent


def test_proxy_ready_then_not_ready_without_storage(proxy: LiveServer, proxy_root: Path) -> None:
    for _ in range(4):  # both uvicorn workers answer the same
        reply = _ready(proxy)
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"status": "ready", "checks": {"storage": "ok", "downloads": "ok"}}
    with storage_gone(proxy_root):
        for _ in range(4):
            reply = _ready(proxy)
            assert reply.status_code == 503
            assert reply.json() == {"status": "not_ready", "checks": {"storage": "failed", "downloads": "failed"}}
        assert httpx.get(f"{proxy.url}/health").status_code == 200
    assert _ready(proxy).status_code == 200


def test_ready_and_metrics_are_documented(engine: LiveServer, proxy: LiveServer) -> None:
    for server in (engine, proxy):
        paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
        assert set(paths["/ready"]["get"]["responses"]) >= {"200", "503"}
        assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
        assert "/health" in paths
