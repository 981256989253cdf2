"""JSON that Python's parser accepts and JSON cannot carry, on every POST endpoint of both services.

``NaN``/``Infinity`` literals and lone surrogates (``"\\ud800"``) used to reach the handlers and
fail wherever they were first encoded (500). Every POST endpoint must answer FastAPI's
``json_invalid`` 422, small and bounded, before any handler runs; well-formed JSON that merely
contains such text (an escaped surrogate pair, ``"NaN"`` inside a string) is accepted as before.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.live_server import LiveServer

BAD_BODIES = {
    "nan": b'{"file_path": "mast/obs1/img_i2d.fits", "threshold_sigma": NaN, "ra": NaN}',
    "infinity": b'{"file_path": "mast/obs1/img_i2d.fits", "width": Infinity, "radius": -Infinity}',
    "nested_nan": b'{"channels": [{"file_paths": ["a.fits"], "weight": NaN}], "items": [{"x": [1, NaN]}]}',
    "lone_high_surrogate": b'{"file_path": "img\\ud800.fits", "target_name": "M\\ud800", "query": "x\\ud800"}',
    "lone_low_surrogate": b'{"file_paths": ["\\udc00"], "obs_id": "\\udfff", "text": "\\uDC80"}',
    # bytes that are no UTF-8 text: FastAPI alone answered an undocumented 400 (found by the fuzzer)
    "not_utf8": b'{"file_path": "img\xff\x0f.fits", "target_name": "\xc3 "}',
}


def _post_paths(client: httpx.Client) -> list[str]:
    schema = client.get("/openapi.json").json()
    return sorted(path for path, ops in schema["paths"].items() if "post" in ops)


@pytest.fixture(scope="module")
def clients(engine_server: LiveServer, proxy_server: LiveServer) -> Iterator[dict[str, httpx.Client]]:
    with (
        httpx.Client(base_url=engine_server.url, timeout=30.0) as engine,
        httpx.Client(base_url=proxy_server.url, timeout=30.0) as proxy,
    ):
        yield {"engine": engine, "proxy": proxy}


@pytest.mark.parametrize("service", ["engine", "proxy"])
@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_every_post_endpoint_answers_422_for_non_json(
    clients: dict[str, httpx.Client], service: str, case: str
) -> None:
    client = clients[service]
    paths = _post_paths(client)
    assert len(paths) >= (10 if service == "engine" else 5)
    problems = []
    for path in paths:
        reply = client.post(path, content=BAD_BODIES[case], headers={"content-type": "application/json"})
        body = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else None
        entry = body["detail"][0] if body and isinstance(body.get("detail"), list) else {}
        if reply.status_code != 422 or entry.get("type") != "json_invalid" or len(reply.content) > 1000:
            problems.append(f"{path}: {reply.status_code} {reply.text[:200]}")
    assert problems == []


def test_the_422_says_what_is_wrong(clients: dict[str, httpx.Client]) -> None:
    reply = clients["engine"].post("/thumbnail", content=b'{"file_path": NaN}')
    assert reply.status_code == 422
    assert reply.headers["x-validation-errors"] == "1"
    assert reply.json() == {
        "detail": [
            {
                "type": "json_invalid",
                "loc": ["body", 14],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "NaN is not a JSON value"},
            }
        ]
    }
    lone = clients["proxy"].post("/mast/search/target", content=b'{"target_name": "M\\ud83163"}')
    assert lone.status_code == 422
    assert lone.json()["detail"][0]["ctx"] == {"error": "lone UTF-16 surrogate in a string"}


def test_json_that_only_looks_suspect_is_accepted(clients: dict[str, httpx.Client]) -> None:
    engine = clients["engine"]
    pair = engine.post(
        "/thumbnail",
        content=b'{"file_path": "\\ud83d\\ude00NaN Infinity.fits"}',
        headers={"content-type": "application/json"},
    )
    assert pair.status_code == 404
    assert pair.json() == {"detail": "File not found: \U0001f600NaN Infinity.fits"}
    escaped = engine.post("/thumbnail", json={"file_path": "a\\ud800.fits"})  # a backslash, not a surrogate
    assert escaped.status_code == 404
    real = engine.post("/thumbnail", json={"file_path": "mast/obs1/img_i2d.fits"})
    assert real.status_code == 200
