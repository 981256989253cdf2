"""Table info, table data and spectra through the app: table description, paging, sorting, searching and spectra."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.analysis.conftest import N_TABLE_ROWS, spectrum_columns, table_columns


def strict_json(text: str) -> object:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-finite JSON token {c}"))


def test_table_info(client: TestClient, keys: dict[str, str]) -> None:
    r = client.get("/analysis/table-info", params={"file_path": keys["catalog"]})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["file_name"] == "catalog.fits"
    hdus = got["table_hdus"]
    assert [(h["index"], h["name"], h["hdu_type"]) for h in hdus] == [(1, "CAT", "BinTableHDU"), (3, "ASC", "TableHDU")]
    cat = hdus[0]
    assert cat["n_rows"] == N_TABLE_ROWS
    assert cat["n_columns"] == 6
    cols = {c["name"]: c for c in cat["columns"]}
    assert cols["NAME"]["dtype"] == "20A"
    assert cols["NAME"]["is_array"] is False
    assert cols["MAG"]["dtype"] == "1E"
    assert cols["MAG"]["unit"] == "mag"
    assert cols["FLUX"] == {
        "name": "FLUX",
        "dtype": "D",
        "unit": "Jy",
        "format": "F10.3",
        "is_array": False,
        "array_shape": None,
    }
    assert cols["VEC"]["is_array"] is True
    assert cols["VEC"]["array_shape"] == [3]
    assert hdus[1]["columns"][1]["dtype"] == "F8.2"


def page(client: TestClient, key: str, **params: object) -> dict:
    r = client.get("/analysis/table-data", params={"file_path": key, "hdu_index": 1, **params})
    assert r.status_code == 200, r.text
    return strict_json(r.text)  # type: ignore[return-value]


def test_first_page_values(client: TestClient, keys: dict[str, str]) -> None:
    got = page(client, keys["catalog"], page=0, page_size=10)
    cols = table_columns()
    assert got["total_rows"] == N_TABLE_ROWS
    assert got["total_columns"] == 6
    assert got["hdu_name"] == "CAT"
    assert got["page"] == 0
    assert got["page_size"] == 10
    assert len(got["rows"]) == 10
    assert got["sort_column"] is None
    assert got["sort_direction"] is None
    row0, row5 = got["rows"][0], got["rows"][5]
    assert row0["ID"] == 0
    assert row0["NAME"] == "src-0000-Galaxy"
    assert row0["GOOD"] is True
    assert row0["FLUX"] is None  # NaN
    assert row5["FLUX"] is None  # +Inf
    assert row5["MAG"] == pytest.approx(float(cols["MAG"][5]))
    assert isinstance(row0["VEC"], str)
    assert row0["VEC"].startswith("[")
    assert len(row0["VEC"]) <= 100


def test_page_is_clamped_to_the_last_page(client: TestClient, keys: dict[str, str]) -> None:
    got = page(client, keys["catalog"], page=999, page_size=500)
    assert got["page"] == 2
    assert len(got["rows"]) == N_TABLE_ROWS - 1000
    assert got["rows"][-1]["ID"] == N_TABLE_ROWS - 1


def test_sort_ascending_and_descending_with_nan_last(client: TestClient, keys: dict[str, str]) -> None:
    flux = table_columns()["FLUX"]
    finite = np.sort(flux[np.isfinite(flux)])
    asc = page(client, keys["catalog"], sort_column="FLUX", sort_direction="asc", page_size=5)
    assert [r["FLUX"] for r in asc["rows"]] == pytest.approx(list(finite[:5]))
    assert asc["sort_column"] == "FLUX"
    assert asc["sort_direction"] == "asc"
    desc = page(client, keys["catalog"], sort_column="FLUX", sort_direction="desc", page_size=5)
    assert [r["FLUX"] for r in desc["rows"]] == pytest.approx(list(finite[::-1][:5]))
    last = page(client, keys["catalog"], sort_column="FLUX", sort_direction="desc", page=999, page_size=7)
    assert all(r["FLUX"] is None for r in last["rows"])
    other = page(client, keys["catalog"], sort_column="NAME", sort_direction="sideways", page_size=3)
    assert [r["NAME"] for r in other["rows"]] == ["src-0000-Galaxy", "src-0001", "src-0002"]


def test_sort_by_bool_and_string_descending(client: TestClient, keys: dict[str, str]) -> None:
    got = page(client, keys["catalog"], sort_column="NAME", sort_direction="desc", page_size=2)
    assert [r["ID"] for r in got["rows"]] == [N_TABLE_ROWS - 1, N_TABLE_ROWS - 2]
    got = page(client, keys["catalog"], sort_column="GOOD", sort_direction="desc", page_size=3)
    assert [r["ID"] for r in got["rows"]] == [0, 3, 6]  # stable within ties


def test_search_is_case_insensitive_over_every_cell(client: TestClient, keys: dict[str, str]) -> None:
    got = page(client, keys["catalog"], search="gALAXY", page_size=500)
    expected = math.ceil(N_TABLE_ROWS / 10)
    assert got["total_rows"] == expected
    assert all("Galaxy" in r["NAME"] for r in got["rows"])
    by_id = page(client, keys["catalog"], search="src-0123", page_size=500)
    assert [r["ID"] for r in by_id["rows"]] == [123]
    none = page(client, keys["catalog"], search="no such text", page=3)
    assert none["total_rows"] == 0
    assert none["rows"] == []
    assert none["page"] == 0
    sorted_search = page(client, keys["catalog"], search="galaxy", sort_column="ID", sort_direction="desc", page_size=2)
    assert [r["ID"] for r in sorted_search["rows"]] == [1230, 1220]


def test_ascii_table(client: TestClient, keys: dict[str, str]) -> None:
    r = client.get("/analysis/table-data", params={"file_path": keys["catalog"], "hdu_index": 3, "sort_column": "A"})
    assert r.status_code == 200, r.text
    assert [row["A"] for row in r.json()["rows"]] == [1, 2, 3]
    assert [row["B"] for row in r.json()["rows"]] == [2.5, 0.5, 1.5]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"page": -1}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"hdu_index": 9}, "out of range"),
        ({"hdu_index": -1}, "out of range"),
        ({"hdu_index": 2}, "HDU 2 is not a table (type: ImageHDU)"),
        ({"hdu_index": 0}, "HDU 0 is not a table (type: PrimaryHDU)"),
        ({"sort_column": "NOPE"}, "NOPE"),
    ],
)
def test_table_data_400(client: TestClient, keys: dict[str, str], params: dict[str, object], detail: str) -> None:
    r = client.get("/analysis/table-data", params={"file_path": keys["catalog"], "hdu_index": 1, **params})
    assert r.status_code == 400
    assert detail in r.json()["detail"]


def test_table_range_errors_come_before_the_file(client: TestClient) -> None:
    r = client.get("/analysis/table-data", params={"file_path": "missing/x.fits", "page_size": 900})
    assert r.status_code == 400


@pytest.mark.parametrize("endpoint", ["table-info", "table-data", "spectral-data"])
@pytest.mark.parametrize(("key", "status"), [("/etc/x.fits", 403), ("a/../../x.fits", 403), ("nope.fits", 404)])
def test_path_errors(client: TestClient, endpoint: str, key: str, status: int) -> None:
    assert client.get(f"/analysis/{endpoint}", params={"file_path": key}).status_code == status


def test_spectral_data(client: TestClient, keys: dict[str, str]) -> None:
    r = client.get("/analysis/spectral-data", params={"file_path": keys["spectrum"]})
    assert r.status_code == 200, r.text
    got = strict_json(r.text)
    cols = spectrum_columns()
    assert got["hdu_index"] == 1
    assert got["hdu_name"] == "EXTRACT1D"
    assert got["n_points"] == 200
    names = [c["name"] for c in got["columns"]]
    assert names == ["WAVELENGTH", "FLUX", "FLUX_ERROR", "FLUX_VAR_POISSON", "DQ"]
    assert got["columns"][0] == {"name": "WAVELENGTH", "unit": "um", "n_points": 200}
    assert got["data"]["WAVELENGTH"] == pytest.approx(list(cols["WAVELENGTH"]))
    assert got["data"]["FLUX"][10] is None
    assert got["data"]["FLUX"][11] == pytest.approx(cols["FLUX"][11])
    assert got["data"]["DQ"][:3] == [0, 0, 0]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"file_path": " "}, "file_path"),
        ({"hdu_index": -1}, "out of range"),
        ({"hdu_index": 5}, "out of range"),
        ({"hdu_index": 0}, "not a table"),
        ({"hdu_index": 2}, "No WAVELENGTH column found"),
    ],
)
def test_spectral_400(client: TestClient, keys: dict[str, str], params: dict[str, object], detail: str) -> None:
    r = client.get("/analysis/spectral-data", params={"file_path": keys["spectrum"], **params})
    assert r.status_code == 400
    assert detail in r.json()["detail"]


def test_missing_file_path_is_422(client: TestClient) -> None:
    for endpoint in ("table-info", "table-data", "spectral-data"):
        assert client.get(f"/analysis/{endpoint}").status_code == 422


def test_spectrum_with_too_many_points_is_400(tmp_path_factory: pytest.TempPathFactory) -> None:
    from astropy.io import fits

    from app.analysis.jobs import spectral_data
    from app.core.exceptions import InvalidRequestError
    from app.processing.tables import MAX_SPECTRAL_POINTS
    from tests.support.jobs import on_file

    path = tmp_path_factory.mktemp("bigspec") / "big_x1d.fits"
    wave = np.arange(MAX_SPECTRAL_POINTS + 1, dtype=np.float32)
    table = fits.BinTableHDU.from_columns([fits.Column(name="WAVE", format="E", array=wave)])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(InvalidRequestError, match="more than the limit"):
        on_file(spectral_data, path, hdu_index=1)
