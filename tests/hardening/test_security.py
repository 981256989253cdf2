"""Security of both live services: the storage-key guard, the body limit, log escaping, leak-free errors.

- Every engine endpoint that takes a storage key refuses absolute keys, ``..`` (plain, with
  backslashes, percent-encoded once or twice), NUL bytes and symlinks inside the root that point
  outside it, with 403 ``Access denied: invalid path``, before it reads anything. A guard test
  makes sure that the table below names every key-taking operation of the OpenAPI schema.
- Request bodies over ``MAX_REQUEST_BODY_BYTES`` (its default) get 413 on both services,
  with a ``Content-Length`` and as a chunked upload without one.
- Hostile text that reaches a log line (here: a request path with a newline and ANSI escapes) is
  escaped by the text formatter; the JSON formatter escapes by construction.
- Error bodies never carry the storage root, a traceback or an ``Errno`` text.

Hostile MAST file names in the proxy's logs are covered in ``test_proxy_faults.py`` (it has the
MAST emulator).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from astropy.io import fits

from app.core.logging import JsonFormatter, TextFormatter
from app.core.settings import Settings
from tests.hardening.conftest import GOOD_KEYS
from tests.hardening.test_bad_files import ENDPOINTS
from tests.support.bad_files import CASES
from tests.support.fits_factory import make_wcs
from tests.support.live_server import LiveServer

DENIED = "Access denied: invalid path"
#: The endpoints of issue 10 that take a storage key (the bad-file table minus its JPEG/AVM variant).
KEY_ENDPOINTS = sorted(name for name in ENDPOINTS if name != "preview_jpeg_avm")
#: Operation paths each entry of ``KEY_ENDPOINTS`` stands for (checked against the live schema).
KEY_PATHS = {
    "/thumbnail",
    "/preview/{data_id}",
    "/histogram/{data_id}",
    "/pixeldata/{data_id}",
    "/cubeinfo/{data_id}",
    "/composite/generate-nchannel",
    "/mosaic/generate",
    "/mosaic/footprint",
    "/analysis/region-statistics",
    "/analysis/detect-sources",
    "/analysis/table-info",
    "/analysis/table-data",
    "/analysis/spectral-data",
}
#: The asynchronous forms check their keys at submit, before any job exists.
ASYNC_KEY_ENDPOINTS = {"/jobs/composite": "composite", "/jobs/mosaic": "mosaic"}
LEAK_MARKERS = ("Traceback", "Errno", 'File "/')
MIB = 1024 * 1024
#: The default ``MAX_REQUEST_BODY_BYTES``, which the live servers of the hardening suite run with.
BODY_LIMIT: int = Settings.model_fields["max_request_body_bytes"].default


def _write_outside_file(path: Path) -> Path:
    """A FITS file every endpoint could read (image with WCS + a spectrum table), outside the root."""
    data = np.random.default_rng(3).normal(10, 1, (48, 64)).astype(np.float32)
    primary = fits.PrimaryHDU(data, header=make_wcs((48, 64)).to_header())
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="WAVELENGTH", format="D", unit="um", array=np.linspace(1, 5, 20)),
            fits.Column(name="FLUX", format="D", unit="Jy", array=np.linspace(0, 1, 20)),
        ],
        name="EXTRACT1D",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([primary, table]).writeto(path, overwrite=True)
    return path


@pytest.fixture(scope="module")
def outside(hardening_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory outside the storage root, reachable through two symlinks inside it."""
    out = tmp_path_factory.mktemp("outside-root")
    _write_outside_file(out / "secret.fits")
    links = {
        hardening_root / "outbound_dir": out,
        hardening_root / "mast" / "outbound_file.fits": out / "secret.fits",
        hardening_root / "mast" / "obs1" / "alias_i2d.fits": hardening_root / GOOD_KEYS[0],  # stays inside
    }
    for link, target in links.items():
        if not link.is_symlink():
            link.symlink_to(target)
    for name, target in (("loop_a", "loop_b"), ("loop_b", "loop_a")):  # a symlink loop
        if not (hardening_root / "mast" / name).is_symlink():
            (hardening_root / "mast" / name).symlink_to(target)
    return out


def _hostile_keys(root: Path, out: Path) -> dict[str, str]:
    return {
        "absolute": "/etc/passwd",
        "absolute_inside_root": str(root / GOOD_KEYS[0]),
        "absolute_outside": str(out / "secret.fits"),
        "dotdot": "../outside/secret.fits",
        "dotdot_inner": "mast/obs1/../../../secret.fits",
        "backslash_dotdot": "mast\\..\\..\\secret.fits",
        "windows_drive": "C:\\secret.fits",
        "percent_dotdot": "%2e%2e/secret.fits",
        "percent_slash": "mast%2F..%2F..%2Fsecret.fits",
        "double_percent": "%252e%252e%252fsecret.fits",
        "nul_byte": "mast/obs1/img_i2d.fits\x00.png",
        "symlink_dir_out": "outbound_dir/secret.fits",
        "symlink_file_out": "mast/outbound_file.fits",
    }


@pytest.fixture(scope="module")
def engine(engine_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine_server.url, timeout=30) as http:
        yield http


def _assert_clean(text: str, *secrets: str) -> None:
    for marker in (*LEAK_MARKERS, *secrets):
        assert marker not in text, f"{marker!r} leaked: {text[:300]}"


def _refs(node: Any, schema: dict[str, Any], seen: set[str]) -> Iterator[Any]:
    """Walk ``node`` and every schema it references."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            target: Any = schema
            for part in ref.lstrip("#/").split("/"):
                target = target[part]
            yield from _refs(target, schema, seen)
        for key, value in node.items():
            yield key
            yield from _refs(value, schema, seen)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value, schema, seen)
    elif isinstance(node, str):
        yield node


def test_table_names_every_key_taking_operation(engine: httpx.Client) -> None:
    schema = engine.get("/openapi.json").json()
    taking = set()
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            words = set(_refs(operation, schema, set()))
            if words & {"file_path", "file_paths"}:
                taking.add(path)
    assert taking == KEY_PATHS | set(ASYNC_KEY_ENDPOINTS)


@pytest.mark.parametrize("path", sorted(ASYNC_KEY_ENDPOINTS))
def test_hostile_keys_are_refused_at_submit(
    path: str, engine: httpx.Client, hardening_root: Path, outside: Path
) -> None:
    problems = []
    for case, key in _hostile_keys(hardening_root, outside).items():
        _, _, kwargs = ENDPOINTS[ASYNC_KEY_ENDPOINTS[path]](key)
        reply = engine.post(path, **kwargs)
        if reply.status_code != 403 or reply.json() != {"detail": DENIED}:
            problems.append(f"{case}: {reply.status_code} {reply.text[:200]}")
        _assert_clean(reply.text, str(hardening_root), str(outside))
    assert problems == []


@pytest.mark.parametrize("endpoint", KEY_ENDPOINTS)
def test_hostile_keys_are_refused(endpoint: str, engine: httpx.Client, hardening_root: Path, outside: Path) -> None:
    problems = []
    for case, key in _hostile_keys(hardening_root, outside).items():
        method, path, kwargs = ENDPOINTS[endpoint](key)
        reply = engine.request(method, path, **kwargs)
        if reply.status_code != 403 or reply.json() != {"detail": DENIED}:
            problems.append(f"{case}: {reply.status_code} {reply.text[:200]}")
        _assert_clean(reply.text, str(hardening_root), str(outside))
    assert problems == []


#: Keys that are not hostile but cannot name a file: a clear 4xx, never a 500.
MALFORMED_KEYS = {
    "symlink_loop": ("mast/loop_a", 404),
    "through_symlink_loop": ("mast/loop_a/x.fits", 404),
    "name_over_255_bytes": ("mast/" + "a" * 300 + ".fits", 400),
    # Only a JSON body can carry it, and JSON cannot: FastAPI's json_invalid 422 (list detail).
    "lone_surrogate": ("mast/\ud800.fits", 422),
}


@pytest.mark.parametrize("endpoint", KEY_ENDPOINTS)
def test_malformed_keys_get_a_clear_4xx(endpoint: str, engine: httpx.Client, outside: Path) -> None:
    problems = []
    for case, (key, status) in MALFORMED_KEYS.items():
        method, path, kwargs = ENDPOINTS[endpoint](key)
        if "json" in kwargs:
            body = json.dumps(kwargs.pop("json")).encode()  # ASCII: a lone surrogate travels as \ud800
            kwargs.update(content=body, headers={"content-type": "application/json"})
        elif "\ud800" in key:
            continue
        reply = engine.request(method, path, **kwargs)
        detail = reply.json().get("detail") if reply.headers.get("content-type") == "application/json" else None
        if reply.status_code != status or not isinstance(detail, list if status == 422 else str):
            problems.append(f"{case}: {reply.status_code} {reply.text[:200]}")
    assert problems == []


def test_symlink_inside_the_root_still_works(engine: httpx.Client, outside: Path) -> None:
    reply = engine.get("/cubeinfo/0123456789abcdef01234567", params={"file_path": "mast/obs1/alias_i2d.fits"})
    assert reply.status_code == 200, reply.text
    reply = engine.post("/thumbnail", json={"file_path": "mast/obs1/alias_i2d.fits"})
    assert reply.status_code == 200
    assert base64.b64decode(reply.json()["thumbnail_base64"]).startswith(b"\x89PNG")


def _chunks(total: int, piece: int = 256 * 1024) -> Iterator[bytes]:
    yield b'{"file_path": "'
    sent = 0
    while sent < total:
        yield b"a" * piece
        sent += piece
    yield b'"}'


@pytest.mark.parametrize("service", ["engine", "proxy"])
def test_oversize_bodies_get_413(service: str, request: pytest.FixtureRequest) -> None:
    server: LiveServer = request.getfixturevalue(f"{service}_server")
    path = "/thumbnail" if service == "engine" else "/mast/search/target"
    expected = {"detail": f"Request body larger than {BODY_LIMIT} bytes"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        declared = http.post(
            path, content=b"{" + b" " * (BODY_LIMIT + 10) + b"}", headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413
        assert declared.json() == expected
        chunked = http.post(path, content=_chunks(BODY_LIMIT + MIB), headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        assert chunked.json() == expected
        # Under the limit the body is parsed and judged on its content.
        small = http.post(path, content=_chunks(MIB), headers={"content-type": "application/json"})
        assert small.status_code in {400, 422}, small.text[:200]
        assert http.get("/health").status_code == 200


def test_hostile_request_path_is_escaped_in_the_logs(proxy_server: LiveServer, engine_server: LiveServer) -> None:
    hostile = "x%0AFAKE-LINE%20level%3DERROR%1B%5B31mred%0D"
    for server, path in ((proxy_server, f"/mast/download/progress-chunked/{hostile}"), (engine_server, f"/{hostile}")):
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get(path).status_code == 404
        escaped = "x\\nFAKE-LINE level=ERROR\\x1b[31mred\\r"
        deadline = time.monotonic() + 5
        while escaped not in (logs := server.logs()) and time.monotonic() < deadline:
            time.sleep(0.05)  # the access line is written just after the response is sent
        assert escaped in logs
        assert "\x1b" not in logs
        assert "\r" not in logs
        assert not any(line.startswith("FAKE-LINE") for line in logs.splitlines())


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_formatters_write_one_line_per_record(formatter: logging.Formatter) -> None:
    record = logging.LogRecord("app.mast", logging.WARNING, __file__, 1, "product_refused", (), None)
    record.product = "evil\nERROR forged\x1b[2J\x9b.fits"
    try:
        raise ValueError("bad\nforged line")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert "\x1b" not in text
    assert "\x9b" not in text
    first, *rest = text.splitlines()
    assert "evil\\nERROR forged" in first
    if isinstance(formatter, JsonFormatter):
        assert rest == []
        assert json.loads(first)["product"] == record.product
    else:
        assert rest
        assert all(line.startswith("  | ") for line in rest)


#: Corpus files that no endpoint can use: every endpoint answers them with an error body.
FAILING_CASES = sorted(
    {"random_bytes", "empty_file", "truncated_header", "truncated_data", "tables_only", "header_only", "all_nan"}
    & set(CASES)
)


def test_error_bodies_do_not_leak(engine: httpx.Client, hardening_root: Path) -> None:
    keys = [f"bad/{CASES[case][0]}" for case in FAILING_CASES] + ["mast/missing.fits", "mast/obs1", "bad"]
    errors = 0
    for endpoint in KEY_ENDPOINTS:
        for key in keys:
            method, path, kwargs = ENDPOINTS[endpoint](key)
            reply = engine.request(method, path, **kwargs)
            assert reply.status_code < 500, (endpoint, key, reply.text[:200])
            if reply.status_code >= 400:
                errors += 1
                _assert_clean(reply.text, str(hardening_root), "/tmp/")
    assert errors >= len(KEY_ENDPOINTS) * 3
