"""Semantic search through real uvicorn processes: persistence across a restart, concurrent writers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.semantic.conftest import LABELLED_ITEMS
from tests.support.live_server import LiveServer


def _env(root: Path) -> dict[str, str]:
    return {
        "SEMANTIC_DATA_DIR": str(root / "semantic"),
        "STORAGE_BASE_PATH": str(root),
        "STORAGE_TEMP_CACHE_DIR": str(root / "cache"),
        "ENGINE_WORKERS": "1",
    }


@pytest.fixture(scope="module")
def live_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("semantic-live")


@pytest.fixture(scope="module")
def two_servers(live_root: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two engine processes sharing one SEMANTIC_DATA_DIR."""
    first = LiveServer("main", env=_env(live_root)).start()
    second = LiveServer("main", env=_env(live_root))
    try:
        second.start()
        yield first, second
    finally:
        second.stop()
        first.stop()


def _batch(prefix: str, count: int) -> list[dict[str, object]]:
    return [
        {"file_id": f"{prefix}{i}", "target_name": f"Galaxy {prefix.upper()}-{i}", "instrument": "NIRCAM"}
        for i in range(count)
    ]


def test_concurrent_batches_on_two_processes_lose_nothing(two_servers: tuple[LiveServer, LiveServer]) -> None:
    first, second = two_servers
    jobs = [(first, _batch("a", 12)), (second, _batch("b", 12)), (first, _batch("c", 12)), (second, _batch("d", 12))]

    def post(server: LiveServer, items: list[dict[str, object]]) -> httpx.Response:
        return httpx.post(f"{server.url}/semantic/embed-batch", json={"items": items}, timeout=120)

    with ThreadPoolExecutor(len(jobs)) as pool:
        responses = list(pool.map(lambda job: post(*job), jobs))
    assert [r.status_code for r in responses] == [200] * len(jobs)
    assert all(r.json()["embedded_count"] == 12 and r.json()["errors"] == [] for r in responses)
    for server in two_servers:
        status = httpx.get(f"{server.url}/semantic/index-status", timeout=30).json()
        assert status["total_indexed"] == 48
        assert status["index_file_exists"] is True
    # a search on either process finds a file written by the other
    hits = httpx.post(f"{second.url}/semantic/search", json={"query": "Galaxy C-7", "top_k": 1}, timeout=60)
    assert hits.json()["results"][0]["file_id"] == "c7"


def test_index_survives_a_restart(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with LiveServer("main", env=env) as server:
        response = httpx.post(f"{server.url}/semantic/embed-batch", json={"items": LABELLED_ITEMS}, timeout=120)
        assert response.status_code == 200
        assert response.json()["total_indexed"] == len(LABELLED_ITEMS)
        single = {"file_id": "extra", "target_name": "Cartwheel Galaxy", "instrument": "MIRI/IMAGE"}
        assert httpx.post(f"{server.url}/semantic/embed", json={"metadata": single}, timeout=60).status_code == 200
    with LiveServer("main", env=env) as restarted:
        status = httpx.get(f"{restarted.url}/semantic/index-status", timeout=30).json()
        assert status["total_indexed"] == len(LABELLED_ITEMS) + 1
        assert status["index_file_exists"] is True
        assert status["model_loaded"] is False  # status never loads the model
        query = {"query": "MIRI image of the Carina nebula", "top_k": 5}
        results = httpx.post(f"{restarted.url}/semantic/search", json=query, timeout=60).json()["results"]
        assert results[0]["file_id"] == "carina_miri"
        wheel = httpx.post(f"{restarted.url}/semantic/search", json={"query": "Cartwheel galaxy"}, timeout=60).json()
        assert wheel["results"][0]["file_id"] == "extra"
        assert httpx.get(f"{restarted.url}/semantic/index-status", timeout=30).json()["model_loaded"] is True


def test_a_batch_whose_client_left_stops_and_writes_nothing(tmp_path: Path) -> None:
    with LiveServer("main", env=_env(tmp_path)) as server:
        # warm the model so that the abandoned batch is pure encoding
        warm = httpx.post(f"{server.url}/semantic/embed-batch", json={"items": _batch("w", 1)}, timeout=120)
        assert warm.status_code == 200
        with pytest.raises(httpx.ReadTimeout):  # 3000 items: a minute or more of encoding
            httpx.post(f"{server.url}/semantic/embed-batch", json={"items": _batch("x", 3000)}, timeout=2.0)
        # the thread stops at its next chunk: the log says so and the index never gets the batch
        deadline = 30
        for _ in range(deadline * 4):
            if "semantic_batch_stopped" in server.logs():
                break
            time.sleep(0.25)
        assert "semantic_batch_stopped" in server.logs()
        assert "path=/semantic/embed-batch status=499" in server.logs()
        status = httpx.get(f"{server.url}/semantic/index-status", timeout=30).json()
        assert status["total_indexed"] == 1
