"""The semantic endpoints through the engine app (TestClient): shapes, relevance, bounds and error codes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.semantic.index import SNAPSHOT_NAME
from app.semantic.schemas import MAX_BATCH_ITEMS
from tests.semantic.conftest import LABELLED_ITEMS, LABELLED_QUERIES


def _ensure_labelled(client: TestClient) -> None:
    """Embed the labelled set unless a previous test of the module already did (re-embedding is idempotent)."""
    if client.get("/semantic/index-status").json()["total_indexed"] < len(LABELLED_ITEMS):
        assert client.post("/semantic/embed-batch", json={"items": LABELLED_ITEMS}).status_code == 200


STATUS_KEYS = {"total_indexed", "model_loaded", "index_file_exists", "model_name", "embedding_dim"}


def test_empty_index(semantic_client: TestClient) -> None:
    status = semantic_client.get("/semantic/index-status")
    assert status.status_code == 200
    body = status.json()
    assert set(body) == STATUS_KEYS
    assert body["total_indexed"] == 0
    assert body["index_file_exists"] is False
    assert body["model_name"] == "all-MiniLM-L6-v2"
    assert body["embedding_dim"] == 384
    search = semantic_client.post("/semantic/search", json={"query": "deep infrared"})
    assert search.status_code == 200
    assert search.json() == {
        "results": [],
        "query": "deep infrared",
        "embed_time_ms": 0.0,
        "search_time_ms": 0.0,
        "total_indexed": 0,
    }


@pytest.mark.parametrize(
    ("body", "detail"),
    [({"items": []}, "items list is required"), ({}, "items list is required"), ({"items": None}, None)],
)
def test_batch_needs_items(semantic_client: TestClient, body: dict[str, Any], detail: str | None) -> None:
    response = semantic_client.post("/semantic/embed-batch", json=body)
    assert response.status_code == 400
    assert response.json()["detail"] == (detail or "items list is required")


def test_batch_above_the_bound_is_422(semantic_client: TestClient) -> None:
    items = [{"file_id": f"f{i}"} for i in range(MAX_BATCH_ITEMS + 1)]
    response = semantic_client.post("/semantic/embed-batch", json={"items": items})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_batch_above_the_old_1000_limit_is_accepted(semantic_client: TestClient) -> None:
    # the old engine refused 1001 items (the backend's full re-index failed); items without text are cheap
    items = [{"file_id": f"bare{i}", "target_name": None, "instrument": None} for i in range(1001)]
    response = semantic_client.post("/semantic/embed-batch", json={"items": items})
    assert response.status_code == 200
    body = response.json()
    assert body["embedded_count"] == 0
    assert len(body["errors"]) == 1001
    assert body["errors"][0] == "bare0: no embeddable text"


def test_embed_one_without_text_is_400(semantic_client: TestClient) -> None:
    body = {"metadata": {key: None for key in LABELLED_ITEMS[0]} | {"file_id": "nothing"}}
    response = semantic_client.post("/semantic/embed", json=body)
    assert response.status_code == 400
    assert response.json() == {"detail": "No embeddable text from metadata"}


def test_embed_one_needs_a_file_id(semantic_client: TestClient) -> None:
    assert semantic_client.post("/semantic/embed", json={"metadata": {"target_name": "M16"}}).status_code == 422
    assert semantic_client.post("/semantic/embed", json={}).status_code == 422


def test_embed_batch_then_search_ranks_the_labelled_file_first(semantic_client: TestClient) -> None:
    # every key present, nulls included, as the backend sends them
    keys = set().union(*(item.keys() for item in LABELLED_ITEMS))
    items = [{key: item.get(key) for key in keys} for item in LABELLED_ITEMS]
    items.append({key: None for key in keys} | {"file_id": "blank"})
    response = semantic_client.post("/semantic/embed-batch", json={"items": items})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "embedded_count": len(LABELLED_ITEMS),
        "total_indexed": len(LABELLED_ITEMS),
        "errors": ["blank: no embeddable text"],
    }
    for query, expected in LABELLED_QUERIES.items():
        result = semantic_client.post("/semantic/search", json={"query": query, "top_k": 3, "min_score": 0.0})
        assert result.status_code == 200
        payload = result.json()
        assert set(payload) == {"results", "query", "embed_time_ms", "search_time_ms", "total_indexed"}
        assert payload["query"] == query
        assert payload["total_indexed"] == len(LABELLED_ITEMS)
        assert payload["results"][0]["file_id"] == expected, (query, payload["results"])
        assert payload["embed_time_ms"] > 0
        assert set(payload["results"][0]) == {"file_id", "score", "matched_text"}
        scores = [r["score"] for r in payload["results"]]
        assert scores == sorted(scores, reverse=True)
    hit = semantic_client.post("/semantic/search", json={"query": "MIRI image of the Carina nebula"}).json()
    assert "Mid-Infrared Instrument (MIRI)" in hit["results"][0]["matched_text"]
    status = semantic_client.get("/semantic/index-status").json()
    assert status["model_loaded"] is True
    assert status["index_file_exists"] is True
    assert status["total_indexed"] == len(LABELLED_ITEMS)


def test_reembedding_replaces_the_vector(semantic_client: TestClient) -> None:
    _ensure_labelled(semantic_client)
    before = semantic_client.get("/semantic/index-status").json()["total_indexed"]
    meta = {"file_id": "jupiter", "target_name": "Saturn rings", "instrument": "NIRCAM", "exposure_time": 60}
    response = semantic_client.post("/semantic/embed", json={"metadata": meta})
    assert response.status_code == 200
    assert response.json() == {"file_id": "jupiter", "success": True, "total_indexed": before}
    results = semantic_client.post("/semantic/search", json={"query": "Saturn rings", "top_k": 1}).json()["results"]
    assert results[0]["file_id"] == "jupiter"
    assert "Saturn" in results[0]["matched_text"]


def test_top_k_and_min_score_limit_results(semantic_client: TestClient) -> None:
    _ensure_labelled(semantic_client)
    total = semantic_client.get("/semantic/index-status").json()["total_indexed"]
    assert total >= 3
    everything = semantic_client.post("/semantic/search", json={"query": "nebula", "top_k": 100, "min_score": 0})
    assert len(everything.json()["results"]) == total
    one = semantic_client.post("/semantic/search", json={"query": "nebula", "top_k": 1, "min_score": 0})
    assert len(one.json()["results"]) == 1
    strict = semantic_client.post("/semantic/search", json={"query": "nebula", "min_score": 1.0}).json()
    assert strict["results"] == []
    default = semantic_client.post("/semantic/search", json={"query": "nebula"}).json()
    assert all(r["score"] >= 0.3 for r in default["results"])


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "x" * 501},
        {"query": "nebula", "top_k": 0},
        {"query": "nebula", "top_k": 101},
        {"query": "nebula", "min_score": -0.01},
        {"query": "nebula", "min_score": 1.01},
        {"top_k": 5},
    ],
)
def test_search_bounds_are_422(semantic_client: TestClient, body: dict[str, Any]) -> None:
    response = semantic_client.post("/semantic/search", json=body)
    assert response.status_code == 422


def test_search_bounds_inclusive(semantic_client: TestClient) -> None:
    for body in ({"query": "x" * 500, "top_k": 100, "min_score": 0.0}, {"query": "y", "top_k": 1, "min_score": 1.0}):
        assert semantic_client.post("/semantic/search", json=body).status_code == 200


def test_unreadable_index_is_503_without_internals(settings: Settings) -> None:
    from main import create_app

    settings.semantic_data_dir.mkdir(parents=True)
    (settings.semantic_data_dir / SNAPSHOT_NAME).write_bytes(b"garbage, not an index")
    with TestClient(create_app(settings)) as client:
        for response in (
            client.get("/semantic/index-status"),
            client.post("/semantic/search", json={"query": "nebula"}),
            client.post("/semantic/embed", json={"metadata": {"file_id": "a", "target_name": "M16"}}),
        ):
            assert response.status_code == 503
            assert response.json() == {"detail": "Semantic index is unreadable"}
