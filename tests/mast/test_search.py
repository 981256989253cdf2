"""Searches and product lists through a live proxy (two workers) against the MAST emulator."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx

from tests.support.mast_emulator import MastEmulator

M16_NEAR = {
    "jw02739-o001_t001_nircam_clear-f090w",
    "jw09999-o001_t001_nircam_hostile",
    "jw08888-o001_t001_nircam_nocloud",
    "jw07777-o001_t001_nircam_nofits",
}


def _ids(body: dict) -> set[str]:
    return {row["obs_id"] for row in body["results"]}


def test_target_search_is_a_cone_with_rewritten_links(client: httpx.Client, emulator: MastEmulator) -> None:
    response = client.post("/mast/search/target", json={"target_name": "M16", "radius": 0.2, "calib_level": [2, 3]})
    assert response.status_code == 200
    body = response.json()
    assert body["search_type"] == "target"
    assert body["query_params"] == {"target_name": "M16", "radius": 0.2, "calib_level": [2, 3]}
    # The f444w observation lies 0.19 deg off in RA and Dec: inside the old box, outside the cone.
    assert _ids(body) == M16_NEAR
    assert body["result_count"] == len(body["results"]) == 4
    row = next(r for r in body["results"] if r["obs_id"] == "jw02739-o001_t001_nircam_clear-f090w")
    uri = "mast:JWST/product/jw02739-o001_t001_nircam_clear-f090w_i2d.jpg"
    assert row["jpegURL"] == f"{emulator.url}/api/v0.1/Download/file?uri={quote(uri)}"
    assert row["sequence_number"] is None
    assert row["calib_level"] == 3
    assert isinstance(row["s_ra"], float)
    assert row["mtFlag"] is False
    sent = [r for r in emulator.invocations if r["service"] == "Mast.Caom.Filtered.Position"]
    assert sent
    assert sent[-1]["params"]["position"].startswith("274.7, -13.8")
    names = [r["params"]["filters"] for r in sent]
    assert any(f["paramName"] == "obs_collection" and f["values"] == ["JWST"] for f in names[-1])


def test_target_spelling_variants_and_unresolvable(client: httpx.Client, emulator: MastEmulator) -> None:
    body = client.post("/mast/search/target", json={"target_name": "m 16", "radius": 0.01, "calib_level": None})
    assert body.status_code == 200
    assert "jw02739-o001_t001_nircam_clear-f090w" in _ids(body.json())
    missing = client.post("/mast/search/target", json={"target_name": "Nowhere X1", "radius": 0.2, "calib_level": None})
    assert missing.status_code == 404
    assert missing.json()["detail"].startswith("Could not resolve target name 'Nowhere X1' using variants: [")
    lookups = [r["params"]["input"] for r in emulator.invocations if r["service"] == "Mast.Name.Lookup"]
    assert {"Nowhere X1", "Nowhere-X1", "NowhereX 1", "NowhereX1"} <= set(lookups)


def test_coordinate_search_public_only_and_calib_null(client: httpx.Client) -> None:
    everything = client.post(
        "/mast/search/coordinates", json={"ra": 151.757, "dec": -40.436, "radius": 0.2, "calib_level": None}
    )
    assert everything.status_code == 200
    body = everything.json()
    # The not-yet-released observation is never returned.
    assert _ids(body) == {"jw02733-o001_t001_miri_f1130w", "jw02733-o002_t001_nircam_f187n"}
    inf_row = next(r for r in body["results"] if r["obs_id"] == "jw02733-o002_t001_nircam_f187n")
    assert inf_row["t_exptime"] is None
    level3 = client.post(
        "/mast/search/coordinates", json={"ra": 151.757, "dec": -40.436, "radius": 0.2, "calib_level": [3]}
    )
    assert _ids(level3.json()) == {"jw02733-o001_t001_miri_f1130w"}
    assert "NaN" not in everything.text
    assert "Infinity" not in everything.text


def test_observation_and_program_search(client: httpx.Client) -> None:
    obs = client.post(
        "/mast/search/observation", json={"obs_id": "jw02739-o002_t001_nircam_clear-f444w", "calib_level": None}
    )
    assert obs.status_code == 200
    body = obs.json()
    assert body["search_type"] == "observation_id"
    assert body["result_count"] == 1
    assert body["results"][0]["em_min"] is None  # NaN upstream
    assert body["query_params"] == {"obs_id": "jw02739-o002_t001_nircam_clear-f444w", "calib_level": None}
    program = client.post("/mast/search/program", json={"program_id": "2733", "calib_level": [2, 3]})
    assert program.status_code == 200
    assert _ids(program.json()) == {"jw02733-o001_t001_miri_f1130w", "jw02733-o002_t001_nircam_f187n"}
    assert program.json()["search_type"] == "program_id"


def test_recent_releases(client: httpx.Client) -> None:
    body = client.post(
        "/mast/search/recent", json={"days_back": 30, "instrument": None, "limit": 50, "offset": 0}
    ).json()
    assert [r["obs_id"] for r in body["results"]] == ["jw02733-o001_t001_miri_f1130w", "jw02733-o002_t001_nircam_f187n"]
    assert body["query_params"] == {"days_back": 30, "instrument": None, "limit": 50, "offset": 0}
    miri = client.post("/mast/search/recent", json={"days_back": 30, "instrument": "miri", "limit": 50, "offset": 0})
    assert [r["obs_id"] for r in miri.json()["results"]] == ["jw02733-o001_t001_miri_f1130w"]
    paged = client.post("/mast/search/recent", json={"days_back": 30, "instrument": None, "limit": 1, "offset": 1})
    assert [r["obs_id"] for r in paged.json()["results"]] == ["jw02733-o002_t001_nircam_f187n"]
    assert (
        client.post(
            "/mast/search/recent", json={"days_back": 30, "instrument": None, "limit": 50, "offset": -1}
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/mast/search/recent", json={"days_back": 0, "instrument": None, "limit": 50, "offset": 0}
        ).status_code
        == 422
    )


def test_products(client: httpx.Client) -> None:
    response = client.post("/mast/products", json={"obs_id": "jw02739-o001_t001_nircam_clear-f090w"})
    assert response.status_code == 200
    body = response.json()
    names = {p["productFilename"] for p in body["products"]}
    assert names == {
        "jw02739-o001_t001_nircam_clear-f090w_i2d.fits",
        "jw02739001001_02101_00001_nrca1_cal.fits",
        "jw02739001001_02101_00002_nrca1_cal.fits",
        "jw02739-o001_t001_nircam_clear-f090w_x1d.fits",
    }
    assert body["product_count"] == 4
    assert all(isinstance(p["size"], int) for p in body["products"])
    unknown = client.post("/mast/products", json={"obs_id": "jw00000-nothing"})
    assert unknown.status_code == 200
    assert unknown.json() == {
        "obs_id": "jw00000-nothing",
        "products": [],
        "product_count": 0,
    }
    assert client.post("/mast/products", json={}).status_code == 422


def test_upstream_errors(client: httpx.Client, emulator: MastEmulator) -> None:
    emulator.faults.search_status = 503
    down = client.post("/mast/search/program", json={"program_id": "5xx", "calib_level": None})
    assert down.status_code == 502
    assert "503" in down.json()["detail"]
    emulator.faults.search_status = None
    emulator.faults.search_malformed = True
    bad = client.post("/mast/search/program", json={"program_id": "badjson", "calib_level": None})
    assert bad.status_code == 502
    assert "malformed" in bad.json()["detail"]
    emulator.faults.search_malformed = False
    emulator.faults.search_delay = 5.0
    slow = client.post("/mast/search/program", json={"program_id": "slow", "calib_level": None})
    assert slow.status_code == 504
    assert slow.json()["detail"].startswith("MAST search timed out after 3 seconds")
    emulator.faults.search_delay = 0.0
    assert client.post("/mast/search/coordinates", json={"ra": "x", "dec": 1}).status_code == 422
    assert (
        json.loads(client.post("/mast/search/program", json={"program_id": "5xx", "calib_level": None}).text)[
            "result_count"
        ]
        == 0
    )
