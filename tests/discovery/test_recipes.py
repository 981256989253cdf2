"""``POST /discovery/suggest-recipes``: recipe ranking, colours, exclusions, filter parsing, determinism and errors."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.discovery.recipe_engine import chromatic_colors, parse_filter, suggest_recipes
from app.discovery.schemas import ObservationInput, SuggestRecipesRequest
from main import create_app
from tests.support.live_server import LiveServer

URL = "/discovery/suggest-recipes"
HEX = re.compile(r"^#[0-9a-f]{6}$")


def obs(filt: str, instrument: str = "NIRCAM", **extra: object) -> dict[str, object]:
    return {"filter": filt, "instrument": instrument, "wavelength_um": None, "observation_id": f"o-{filt}", **extra}


NIRCAM_MIRI = [
    obs("F090W"),
    obs("F187N"),
    obs("F200W"),
    obs("F335M"),
    obs("F444W"),
    obs("F470N"),
    obs("F770W", "MIRI"),
    obs("F1130W", "MIRI"),
    obs("F2100W", "MIRI"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from tests.analysis.conftest import make_settings

    root = tmp_path_factory.mktemp("discovery") / "data"
    root.mkdir()
    with TestClient(create_app(make_settings(root)), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("name", "wavelength"),
    [
        ("F090W", 0.90),
        ("F444W", 4.44),
        ("F770W", 7.70),
        ("F2100W", 21.0),
        ("F1130W", 11.3),
        ("F150W2", 1.50),
        ("F444W;F470N", 4.70),
        ("CLEAR;F090W", 0.90),
        ("F322W2+F323N", 3.23),
        ("f200w", 2.00),
    ],
)
def test_parse_filter(name: str, wavelength: float) -> None:
    band = parse_filter(name)
    assert band is not None
    assert band.wavelength_um == pytest.approx(wavelength)


@pytest.mark.parametrize("name", ["CLEAR", "OPAQUE", "", "FOO", "F12W"])
def test_parse_filter_unknown(name: str) -> None:
    assert parse_filter(name) is None


def test_backend_request_ranks_and_colours(client: TestClient) -> None:
    r = client.post(URL, json={"target_name": "M16", "observations": NIRCAM_MIRI})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["target"] == {"name": "M16", "common_name": None, "ra": None, "dec": None, "category": None}
    recipes = got["recipes"]
    assert [rec["rank"] for rec in recipes] == list(range(1, len(recipes) + 1))
    assert re.search(r'"rank":1[,}]', r.text)
    assert re.search(r'"estimated_time_seconds":\d+[,}]', r.text)
    scores = [rec["score"] for rec in recipes]
    assert scores == sorted(scores, reverse=True)
    names = [rec["name"] for rec in recipes]
    assert "N-filter NIRCAM" in names
    assert "N-filter MIRI+NIRCAM" in names
    assert "Narrowband NIRCAM" in names
    assert "Classic 3-color NIRCAM" in names
    # Broadband MIRI has the same filters as N-filter MIRI: kept once, under the higher-priority name.
    assert "N-filter MIRI" in names
    assert "Broadband MIRI" not in names
    for rec in recipes:
        assert rec["requires_mosaic"] is False
        assert list(rec["color_mapping"]) == rec["filters"]
        assert all(HEX.match(c) for c in rec["color_mapping"].values())
        assert rec["observation_ids"] == [f"o-{f}" for f in rec["filters"]]
    everything = next(rec for rec in recipes if rec["name"] == "N-filter MIRI+NIRCAM")
    assert everything["filters"][0] == "F090W"
    assert everything["filters"][-1] == "F2100W"
    assert everything["color_mapping"]["F090W"] == "#0000ff"
    assert everything["color_mapping"]["F2100W"] == "#ff0000"
    assert everything["instruments"] == ["MIRI", "NIRCAM"]


def test_order_is_deterministic_under_input_permutation() -> None:
    a = suggest_recipes(SuggestRecipesRequest.model_validate({"observations": NIRCAM_MIRI}))
    b = suggest_recipes(SuggestRecipesRequest.model_validate({"observations": NIRCAM_MIRI[::-1]}))
    assert a.model_dump() == b.model_dump()
    assert a.target is None


def test_classic_three_colour_and_ties_keep_contract_order() -> None:
    observations = [obs(f) for f in ("F090W", "F150W", "F200W", "F277W", "F356W", "F444W")]
    recipes = suggest_recipes(SuggestRecipesRequest.model_validate({"observations": observations})).recipes
    names = [r.name for r in recipes]
    assert names[0] == "N-filter NIRCAM"
    classic = next(r for r in recipes if r.name == "Classic 3-color NIRCAM")
    assert classic.filters[0] == "F090W"
    assert classic.filters[-1] == "F444W"
    assert len(classic.filters) == 3
    assert list(classic.color_mapping.values()) == ["#0000ff", "#00ff00", "#ff0000"]
    # Broadband == N-filter here: one recipe per filter set.
    assert "Broadband NIRCAM" not in names


def test_wavelength_given_wins_over_the_name() -> None:
    observations = [obs("CUSTOM1", wavelength_um=2.0), obs("CUSTOM2", wavelength_um=1.0)]
    recipes = suggest_recipes(SuggestRecipesRequest.model_validate({"observations": observations})).recipes
    assert recipes[0].filters == ["CUSTOM2", "CUSTOM1"]


def test_exclusions(client: TestClient) -> None:
    observations = [
        obs("F090W"),
        obs("F200W"),
        obs("F444W", t_obs_release=99999.0),  # proprietary until 2132
        obs("F150W", dataproduct_type="spectrum"),
        obs("F277W", dataproduct_type="cube"),
        obs("GR150R;F150W", "NIRISS"),
        obs("F356W", intent_type="calibration"),
        {**obs("F410M"), "observation_id": "jw01234-o001_t001_nircam_background"},
        obs("F115W", t_obs_release=50000.0),  # public since 1995
    ]
    r = client.post(URL, json={"target_name": None, "observations": observations})
    assert r.status_code == 200
    got = r.json()
    assert got["target"] is None
    used = {f for rec in got["recipes"] for f in rec["filters"]}
    assert used == {"F090W", "F115W", "F200W"}


def test_sky_grouping_makes_one_set_per_field() -> None:
    here = {"ra": 274.70, "dec": -13.80}
    there = {"ra": 83.82, "dec": -5.39}
    observations = [obs("F090W", **here), obs("F200W", **here), obs("F444W", **here)]
    observations += [obs("F150W", **there), obs("F356W", **there)]
    recipes = suggest_recipes(SuggestRecipesRequest.model_validate({"observations": observations})).recipes
    by_name = {r.name: r.filters for r in recipes}
    assert by_name["N-filter NIRCAM (field 1)"] == ["F090W", "F200W", "F444W"]
    assert by_name["N-filter NIRCAM (field 2)"] == ["F150W", "F356W"]
    assert all(len(set(f) & {"F150W", "F356W"}) in (0, 2) for f in by_name.values())


def test_partial_overlap_lowers_the_score() -> None:
    near = [obs("F090W", ra=10.0, dec=0.0), obs("F200W", ra=10.0, dec=0.0), obs("F444W", ra=10.0, dec=0.0)]
    offset = [obs("F090W", ra=10.0, dec=0.0), obs("F200W", ra=10.0, dec=0.0), obs("F444W", ra=10.08, dec=0.0)]
    s_near = suggest_recipes(SuggestRecipesRequest.model_validate({"observations": near})).recipes[0].score
    s_off = suggest_recipes(SuggestRecipesRequest.model_validate({"observations": offset})).recipes[0].score
    assert s_off < s_near


def test_single_filter_gives_no_recipes(client: TestClient) -> None:
    r = client.post(URL, json={"target_name": "X", "observations": [obs("F090W")]})
    assert r.status_code == 200
    assert r.json()["recipes"] == []


@pytest.mark.parametrize(
    "payload", [{"target_name": "M16"}, {"target_name": "M16", "observations": None}, {"observations": []}]
)
def test_observations_required(client: TestClient, payload: dict[str, object]) -> None:
    r = client.post(URL, json=payload)
    assert r.status_code == 400
    assert r.json() == {"detail": "observations list is required"}


def test_422_for_a_malformed_observation(client: TestClient) -> None:
    assert client.post(URL, json={"observations": [{"instrument": "NIRCAM"}]}).status_code == 422


def test_colours_spread_blue_to_red() -> None:
    from app.discovery.recipe_engine import FilterEntry

    entries = [FilterEntry(f"F{i}", "NIRCAM", float(i), "broad") for i in range(1, 6)]
    colors = list(chromatic_colors(entries).values())
    assert colors[0] == "#0000ff"
    assert colors[-1] == "#ff0000"
    assert len(set(colors)) == 5
    assert ObservationInput(filter="F090W", instrument="NIRCAM").wavelength_um is None


def test_suggest_recipes_live(tmp_path_factory: pytest.TempPathFactory) -> None:
    import httpx

    root = tmp_path_factory.mktemp("discovery_live")
    env = {"STORAGE_BASE_PATH": str(root), "SEMANTIC_DATA_DIR": str(root / "semantic"), "ENGINE_WORKERS": "1"}
    with LiveServer("main", env=env) as server:
        r = httpx.post(f"{server.url}{URL}", json={"target_name": "M16", "observations": NIRCAM_MIRI}, timeout=30)
        assert r.status_code == 200
        assert r.json()["recipes"][0]["rank"] == 1
        r = httpx.post(f"{server.url}{URL}", json={"target_name": "M16", "observations": None}, timeout=30)
        assert r.status_code == 400
        assert r.json()["detail"] == "observations list is required"
