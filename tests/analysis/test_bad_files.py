"""Every analysis endpoint on the corpus of awkward and broken FITS files: a 200 or a clear 4xx, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from main import create_app
from tests.analysis.conftest import make_settings
from tests.support.bad_files import CASES, write_bad_corpus

REGION = {"region_type": "rectangle", "rectangle": {"x": 0, "y": 0, "width": 8, "height": 8}, "ellipse": None}


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    root = tmp_path_factory.mktemp("bad") / "data"
    root.mkdir()
    paths = write_bad_corpus(root / "bad")
    keys = {name: str(path.relative_to(root)) for name, path in paths.items()}
    with TestClient(create_app(make_settings(root)), raise_server_exceptions=False) as client:
        yield client, keys


def calls(key: str) -> list[tuple[str, str, dict[str, object]]]:
    return [
        ("POST", "/analysis/region-statistics", {"json": {"file_path": key, **REGION}}),
        ("POST", "/analysis/detect-sources", {"json": {"file_path": key, "method": "auto"}}),
        ("POST", "/analysis/detect-sources", {"json": {"file_path": key, "method": "daofind"}}),
        ("GET", "/analysis/table-info", {"params": {"file_path": key}}),
        ("GET", "/analysis/table-data", {"params": {"file_path": key, "hdu_index": 1}}),
        ("GET", "/analysis/spectral-data", {"params": {"file_path": key}}),
    ]


def _reject_non_finite(token: str) -> None:
    pytest.fail(f"non-finite JSON token {token}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_never_a_server_error(bad: tuple[TestClient, dict[str, str]], case: str) -> None:
    client, keys = bad
    for method, url, kwargs in calls(keys[case]):
        r = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        assert r.status_code < 500, f"{case} {url}: {r.status_code} {r.text}"
        body = json.loads(r.text, parse_constant=_reject_non_finite)
        if r.status_code >= 400:
            assert isinstance(body["detail"], str)
            assert str(Path.cwd()) not in body["detail"]


def test_expected_outcomes(bad: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = bad
    huge = client.post("/analysis/detect-sources", json={"file_path": keys["huge_header"]})
    assert huge.status_code == 413
    assert client.post("/analysis/detect-sources", json={"file_path": keys["all_nan"]}).status_code == 400
    inf = client.post("/analysis/region-statistics", json={"file_path": keys["with_infinities"], **REGION})
    assert inf.status_code in (200, 400)
    for case in ("random_bytes", "empty_file"):
        r = client.get("/analysis/table-info", params={"file_path": keys[case]})
        assert r.status_code == 400
    r = client.post("/analysis/region-statistics", json={"file_path": keys["tile_compressed"], **REGION})
    assert r.status_code == 200
    assert r.json()["pixel_count"] == 64
