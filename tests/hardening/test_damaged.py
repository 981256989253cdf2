"""Damaged files over real HTTP: a clear 400 that names the damaged HDU, never a 500.

A tile-compressed image whose tiles are noise makes astropy's codec raise its own exception,
which cannot even be pickled back from a worker; a header card such as ``CRPIX1 = NAN`` fails
wherever it is first read. Both must reach the client as a 400 saying which HDU is damaged.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.hardening.test_bad_files import ENDPOINTS
from tests.support.bad_files import CASES
from tests.support.live_server import LiveServer

#: Endpoints that read the pixels of the file's image.
PIXEL_READERS = (
    "thumbnail",
    "preview",
    "histogram",
    "pixeldata",
    "composite",
    "mosaic",
    "region_statistics",
    "detect_sources",
)


@pytest.fixture(scope="module")
def client(engine_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine_server.url, timeout=60.0) as http:
        yield http


def _call(client: httpx.Client, endpoint: str, case: str) -> httpx.Response:
    method, path, kwargs = ENDPOINTS[endpoint](f"bad/{CASES[case][0]}")
    return client.request(method, path, **kwargs)


@pytest.mark.parametrize("endpoint", PIXEL_READERS)
def test_damaged_tiles_are_a_400_naming_the_hdu(client: httpx.Client, endpoint: str) -> None:
    reply = _call(client, endpoint, "damaged_tiles")
    assert reply.status_code == 400, reply.text
    assert reply.json() == {"detail": "The data of HDU 1 (SCI) is damaged or truncated"}


@pytest.mark.parametrize("endpoint", [*PIXEL_READERS, "footprint"])
def test_an_unparsable_card_is_a_400_naming_hdu_and_card(client: httpx.Client, endpoint: str) -> None:
    reply = _call(client, endpoint, "unparsable_card")
    assert reply.status_code == 400, reply.text
    if endpoint == "composite":  # the contract: a channel skips files it cannot read, then has no data
        assert reply.json() == {"detail": "No usable image data for channel ch0"}
    else:
        assert reply.json() == {"detail": "The header of HDU 0 is damaged: card CRPIX1 cannot be parsed"}


def test_the_engine_logged_no_pickling_error(engine_server: LiveServer, client: httpx.Client) -> None:
    for endpoint in PIXEL_READERS:
        _call(client, endpoint, "damaged_tiles")
    logs = engine_server.logs()
    assert "PicklingError" not in logs
    assert "CfitsioException" not in logs or "fits_read_failed" in logs
