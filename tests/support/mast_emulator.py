"""A MAST API emulator on 127.0.0.1 for integration tests of the MAST proxy.

It speaks what the proxy (and astroquery 0.4.11 inside it) uses:

- ``POST /api/v0/invoke`` with form field ``request``: ``Mast.Caom.Filtered.Position`` (true cone
  search on the ``position`` string ``"ra, dec, radius"``), ``Mast.Caom.Filtered``,
  ``Mast.Caom.Products`` (by comma-separated ``obsid``) and ``Mast.Name.Lookup``;
- ``POST /portal/Mashup/Mashup.asmx/columnsconfig`` (column types that astroquery's filter
  builder reads);
- ``GET``/``HEAD /api/v0.1/Download/file?uri=`` with ``Range`` support;
- ``GET /api/v0.1/path_lookup/?uri=...`` (cloud paths in the public bucket).

It serves a handful of JWST-like observations and real FITS bytes made with
:mod:`tests.support.fits_factory`, and injects faults on demand: slow answers, 5xx bursts,
connections dropped mid-file, a lying ``Content-Length`` and malformed JSON. Every download
request is logged (uri, range start, bytes sent) so tests can prove what was re-downloaded.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import math
import tempfile
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import numpy as np
import uvicorn

from tests.support.fits_factory import make_wcs, write_image
from tests.support.net import free_port, wait_for_http

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

NOW_MJD = time.time() / 86400.0 + 40587.0

OBS_COLUMNS: list[tuple[str, str]] = [
    ("intentType", "string"),
    ("obs_collection", "string"),
    ("provenance_name", "string"),
    ("instrument_name", "string"),
    ("project", "string"),
    ("filters", "string"),
    ("wavelength_region", "string"),
    ("target_name", "string"),
    ("target_classification", "string"),
    ("obs_id", "string"),
    ("s_ra", "float"),
    ("s_dec", "float"),
    ("dataproduct_type", "string"),
    ("proposal_pi", "string"),
    ("calib_level", "int"),
    ("t_min", "float"),
    ("t_max", "float"),
    ("t_exptime", "float"),
    ("em_min", "float"),
    ("em_max", "float"),
    ("obs_title", "string"),
    ("t_obs_release", "float"),
    ("proposal_id", "string"),
    ("proposal_type", "string"),
    ("sequence_number", "int"),
    ("s_region", "string"),
    ("jpegURL", "string"),
    ("dataURL", "string"),
    ("dataRights", "string"),
    ("mtFlag", "boolean"),
    ("srcDen", "float"),
    ("obsid", "string"),
    ("objID", "string"),
]

PRODUCT_COLUMNS: list[tuple[str, str]] = [
    ("obsID", "string"),
    ("obs_collection", "string"),
    ("dataproduct_type", "string"),
    ("obs_id", "string"),
    ("description", "string"),
    ("type", "string"),
    ("dataURI", "string"),
    ("productType", "string"),
    ("productGroupDescription", "string"),
    ("productSubGroupDescription", "string"),
    ("productDocumentationURL", "string"),
    ("project", "string"),
    ("prvversion", "string"),
    ("proposal_id", "string"),
    ("productFilename", "string"),
    ("size", "int"),
    ("parent_obsid", "string"),
    ("dataRights", "string"),
    ("calib_level", "int"),
    ("filters", "string"),
]

#: Target names the emulated ``Mast.Name.Lookup`` knows (lower-case) and their coordinates.
NAMES: dict[str, tuple[float, float]] = {
    "m16": (274.7, -13.8),
    "ngc 3132": (151.757, -40.436),
    "carina": (159.2, -58.6),
}


@dataclass
class Faults:
    """Fault injection switches; tests set them between requests."""

    search_delay: float = 0.0
    search_status: int | None = None
    search_malformed: bool = False
    download_status_burst: int = 0
    download_status: int = 503
    drop_after: dict[str, int] = field(default_factory=dict)
    lie_length: dict[str, int] = field(default_factory=dict)
    stall: dict[str, tuple[int, float]] = field(default_factory=dict)
    piece_delay: float = 0.0
    piece_bytes: int = 64 * 1024
    #: Drop EVERY GET of a uri after this many bytes of the reply (unlike ``drop_after``, never
    #: consumed): each resumed attempt gains that many bytes, so a job with few retries fails.
    drop_every: dict[str, int] = field(default_factory=dict)
    #: Answer every download with the whole file (200), as a server without Range support does.
    ignore_range: bool = False


@dataclass
class DownloadRecord:
    """One download request the emulator answered."""

    uri: str
    method: str
    range_start: int
    status: int
    bytes_sent: int = 0


def _obs_row(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "intentType": "science",
        "obs_collection": "JWST",
        "provenance_name": "CALJWST",
        "instrument_name": "NIRCAM/IMAGE",
        "project": "JWST",
        "filters": "F090W",
        "wavelength_region": "INFRARED",
        "target_name": "M16",
        "target_classification": "Nebula",
        "s_ra": 274.7,
        "s_dec": -13.8,
        "dataproduct_type": "image",
        "proposal_pi": "Pontoppidan, Klaus",
        "calib_level": 3,
        "t_min": 59727.5,
        "t_max": 59727.9,
        "t_exptime": 2576.9,
        "em_min": 795.0,
        "em_max": 1005.0,
        "obs_title": "Pillars of Creation",
        "t_obs_release": 59760.0,
        "proposal_id": "2739",
        "proposal_type": "DD",
        "sequence_number": None,
        "s_region": "POLYGON 274.6 -13.9 274.8 -13.9 274.8 -13.7 274.6 -13.7",
        "dataRights": "PUBLIC",
        "mtFlag": False,
        "srcDen": 5885.0,
        "objID": "1000",
    }
    row.update(values)
    row.setdefault("jpegURL", f"mast:JWST/product/{row['obs_id']}_i2d.jpg")
    row.setdefault("dataURL", f"mast:JWST/product/{row['obs_id']}_i2d.fits")
    return row


class MastEmulator:
    """The emulator's data, fault switches and the uvicorn server running it.

    Parameters
    ----------
    work_dir
        Where the FITS files are written before being served from memory.
    """

    def __init__(self, work_dir: Path | None = None) -> None:
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="mast-emulator-"))
        self.faults = Faults()
        self.requests: list[DownloadRecord] = []
        self.invocations: list[dict[str, Any]] = []
        self.observations: list[dict[str, Any]] = []
        self.products: dict[str, list[dict[str, Any]]] = {}
        self.files: dict[str, bytes] = {}
        self.cloud_paths: dict[str, str | None] = {}
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._seed_data()

    # --- data ---------------------------------------------------------------------------------------

    def _fits_bytes(self, name: str, side: int, seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        data = rng.normal(10.0, 2.0, (side, side)).astype(np.float32)
        path = write_image(
            self.work_dir / name, data, wcs=make_wcs((side, side)), header={"INSTRUME": "NIRCAM", "FILTER": "F090W"}
        )
        return path.read_bytes()

    def add_observation(self, row: dict[str, Any], products: list[tuple[str, str, int, int]] | None = None) -> None:
        """Add an observation and products ``(filename, productType, side_px, calib_level)``."""
        self.observations.append(row)
        obsid = row["obsid"]
        rows = []
        for index, (filename, ptype, side, calib) in enumerate(products or []):
            uri = f"mast:JWST/product/{filename}"
            content = self._fits_bytes(f"{obsid}-{index}.fits", side, seed=zlib.crc32(f"{obsid}-{index}".encode()))
            self.files[uri] = content
            safe = filename.replace("/", "_")
            self.cloud_paths[uri] = f"/jwst/public/{row['proposal_id']}/{row['obs_id']}/{safe}"
            rows.append(
                {
                    "obsID": obsid,
                    "obs_collection": "JWST",
                    "dataproduct_type": "image",
                    "obs_id": row["obs_id"],
                    "description": "Calibrated mosaic",
                    "type": "S",
                    "dataURI": uri,
                    "productType": ptype,
                    "productGroupDescription": "Minimum Recommended Products",
                    "productSubGroupDescription": "I2D",
                    "productDocumentationURL": "",
                    "project": "CALJWST",
                    "prvversion": "1.11.4",
                    "proposal_id": row["proposal_id"],
                    "productFilename": filename,
                    "size": len(content),
                    "parent_obsid": obsid,
                    "dataRights": "PUBLIC",
                    "calib_level": calib,
                    "filters": row["filters"],
                }
            )
        self.products[obsid] = rows

    def _seed_data(self) -> None:
        recent = NOW_MJD - 5.0
        self.add_observation(
            _obs_row(obs_id="jw02739-o001_t001_nircam_clear-f090w", obsid="87602563"),
            [
                ("jw02739-o001_t001_nircam_clear-f090w_i2d.fits", "SCIENCE", 512, 3),
                ("jw02739001001_02101_00001_nrca1_cal.fits", "SCIENCE", 640, 2),
                ("jw02739001001_02101_00002_nrca1_cal.fits", "SCIENCE", 384, 2),
                ("jw02739-o001_t001_nircam_clear-f090w_x1d.fits", "SCIENCE", 64, 3),
                ("jw02739-o001_t001_nircam_clear-f090w_asn.fits", "AUXILIARY", 64, 3),
            ],
        )
        # About 0.15 deg east in RA at dec -13.8: inside a 0.2 deg box but outside a 0.2 deg cone.
        self.add_observation(
            _obs_row(
                obs_id="jw02739-o002_t001_nircam_clear-f444w",
                obsid="87602564",
                s_ra=274.7 + 0.19,
                s_dec=-13.8 + 0.19,
                filters="F444W",
                em_min=float("nan"),
            )
        )
        self.add_observation(
            _obs_row(
                obs_id="jw02733-o001_t001_miri_f1130w",
                obsid="87600001",
                s_ra=151.757,
                s_dec=-40.436,
                target_name="NGC 3132",
                instrument_name="MIRI/IMAGE",
                filters="F1130W",
                proposal_id="2733",
                t_obs_release=recent,
            ),
            [("jw02733-o001_t001_miri_f1130w_i2d.fits", "SCIENCE", 256, 3)],
        )
        self.add_observation(
            _obs_row(
                obs_id="jw02733-o002_t001_nircam_f187n",
                obsid="87600002",
                s_ra=151.76,
                s_dec=-40.44,
                target_name="NGC 3132",
                proposal_id="2733",
                calib_level=2,
                t_obs_release=recent - 2.0,
                t_exptime=float("inf"),
            ),
        )
        # Not public yet: must never be returned by target/coordinate/observation/program searches.
        self.add_observation(
            _obs_row(
                obs_id="jw02733-o003_t001_nircam_f200w",
                obsid="87600003",
                s_ra=151.757,
                s_dec=-40.436,
                proposal_id="2733",
                t_obs_release=NOW_MJD + 100.0,
            )
        )
        hostile = _obs_row(obs_id="jw09999-o001_t001_nircam_hostile", obsid="87609999", proposal_id="9999")
        self.add_observation(
            hostile,
            [
                ("../../escape.fits", "SCIENCE", 64, 3),
                ("/tmp/absolute.fits", "SCIENCE", 64, 3),
                ("sub/dir.fits", "SCIENCE", 64, 3),
                ("..", "SCIENCE", 64, 3),
                ("bad name;rm.fits", "SCIENCE", 64, 3),
                ("jw09999_good_i2d.fits", "SCIENCE", 64, 3),
            ],
        )
        self.add_observation(
            _obs_row(obs_id="jw08888-o001_t001_nircam_nocloud", obsid="87608888", proposal_id="8888"),
            [("jw08888_i2d.fits", "SCIENCE", 128, 3)],
        )
        self.cloud_paths["mast:JWST/product/jw08888_i2d.fits"] = None
        self.add_observation(
            _obs_row(obs_id="jw07777-o001_t001_nircam_nofits", obsid="87607777", proposal_id="7777"),
            [("jw07777_preview.jpg", "PREVIEW", 16, 3)],
        )

    def file_bytes(self, filename: str) -> bytes:
        """The bytes served for a product filename."""
        return self.files[f"mast:JWST/product/{filename}"]

    def downloads_of(self, filename: str) -> list[DownloadRecord]:
        uri = f"mast:JWST/product/{filename}"
        return [r for r in self.requests if r.uri == uri and r.method == "GET"]

    def upload_to_s3(self, client: Any, bucket: str) -> None:
        """Put every product with a cloud path into ``bucket`` as public-read objects."""
        for uri, path in self.cloud_paths.items():
            if path is not None and uri in self.files:
                client.put_object(Bucket=bucket, Key=path.lstrip("/"), Body=self.files[uri], ACL="public-read")

    # --- server -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MastEmulator:
        self.port = free_port()
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for_http(f"{self.url}/health", timeout=20)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    # --- ASGI ---------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        query = parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)
        if path == "/health":
            await self._json(send, {"status": "ok"})
        elif path == "/api/v0/invoke":
            await self._invoke(receive, send)
        elif path == "/portal/Mashup/Mashup.asmx/columnsconfig":
            await self._columns_config(receive, send)
        elif path == "/api/v0.1/Download/file":
            await self._download(scope, dict(query).get("uri", ""), send)
        elif path.rstrip("/") == "/api/v0.1/path_lookup":
            uris = [v for k, v in query if k == "uri"]
            await self._json(send, {u: {"path": self.cloud_paths.get(u)} for u in uris})
        else:
            await self._json(send, {"error": "not found"}, status=404)

    @staticmethod
    async def _body(receive: Receive) -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    async def _json(send: Send, body: Any, *, status: int = 200, raw: bytes | None = None) -> None:
        payload = raw if raw is not None else json.dumps(body, allow_nan=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _columns_config(self, receive: Receive, send: Send) -> None:
        form = parse_qs((await self._body(receive)).decode())
        name = form.get("colConfigId", [""])[0]
        columns = PRODUCT_COLUMNS if "Products" in name else OBS_COLUMNS
        await self._json(send, {col: {"vot.datatype": typ, "text": col} for col, typ in columns})

    async def _invoke(self, receive: Receive, send: Send) -> None:
        form = parse_qs((await self._body(receive)).decode())
        request = json.loads(form["request"][0])
        self.invocations.append(request)
        service = request.get("service")
        if service == "Mast.Name.Lookup":
            name = " ".join(str(request["params"]["input"]).lower().split())
            found = NAMES.get(name)
            coords = [{"ra": found[0], "decl": found[1], "canonicalName": name}] if found else []
            await self._json(send, {"resolvedCoordinate": coords, "status": ""})
            return
        if self.faults.search_delay:
            await asyncio.sleep(self.faults.search_delay)
        if self.faults.search_status is not None:
            await self._json(send, {"status": "ERROR"}, status=self.faults.search_status)
            return
        if self.faults.search_malformed:
            await self._json(send, None, raw=b'{"status": "COMPLETE", "data": [')
            return
        params = request.get("params", {})
        if service == "Mast.Caom.Products":
            ids = [i for i in str(params.get("obsid", "")).split(",") if i]
            rows = [row for i in ids for row in self.products.get(i, [])]
            columns = PRODUCT_COLUMNS
        elif service in {"Mast.Caom.Filtered", "Mast.Caom.Filtered.Position"}:
            rows = [r for r in self.observations if _matches(r, params.get("filters", []))]
            if params.get("position"):
                ra, dec, radius = (float(x) for x in str(params["position"]).split(","))
                rows = [r for r in rows if _separation(ra, dec, r["s_ra"], r["s_dec"]) <= radius]
            columns = OBS_COLUMNS
        else:
            await self._json(send, {"status": "ERROR", "msg": f"unknown service {service}"})
            return
        data = [{k: _json_safe(v) for k, v in row.items()} for row in rows]
        body = {
            "status": "COMPLETE",
            "msg": "",
            "fields": [{"name": col, "type": typ} for col, typ in columns],
            "data": data,
            "paging": {"page": 1, "pageSize": len(data), "pagesFiltered": 1, "rows": len(data)},
        }
        await self._json(send, body)

    async def _download(self, scope: Scope, uri: str, send: Send) -> None:
        method = scope["method"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        content = self.files.get(uri)
        start = 0
        range_header = "" if self.faults.ignore_range else headers.get("range", "")
        if range_header.startswith("bytes="):
            start = int(range_header[6:].split("-")[0] or 0)
        record = DownloadRecord(uri=uri, method=method, range_start=start, status=200)
        self.requests.append(record)
        if content is None:
            record.status = 404
            await self._json(send, {"error": "not found"}, status=404)
            return
        refusal = self._download_refusal(content, method, start, range_header)
        if refusal is not None:
            record.status, error = refusal
            await self._json(send, {"error": error}, status=record.status)
            return
        total = len(content)
        status = 206 if range_header else 200
        body = content[start:]
        length = self.faults.lie_length.get(uri, len(body))
        out = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(length).encode()),
            (b"accept-ranges", b"bytes"),
        ]
        if status == 206:
            out.append((b"content-range", f"bytes {start}-{total - 1}/{total}".encode()))
        record.status = status
        await send({"type": "http.response.start", "status": status, "headers": out})
        if method == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        await self._send_body(uri, body, record, send)

    def _download_refusal(self, content: bytes, method: str, start: int, range_header: str) -> tuple[int, str] | None:
        """The error status and message of a download refused by a fault or a bad range, or None to serve it."""
        if method == "GET" and self.faults.download_status_burst > 0:
            self.faults.download_status_burst -= 1
            return self.faults.download_status, "unavailable"
        if start >= len(content) and range_header:
            return 416, "range"
        return None

    async def _send_body(self, uri: str, body: bytes, record: DownloadRecord, send: Send) -> None:
        """Stream ``body`` in pieces, applying the connection drop, stall and delay faults of ``uri``."""
        drop_at = self.faults.drop_after.pop(uri, None)
        if drop_at is None:
            drop_at = self.faults.drop_every.get(uri)
        stall = self.faults.stall.pop(uri, None)
        sent = 0
        step = self.faults.piece_bytes
        while sent < len(body):
            piece = body[sent : sent + step]
            if drop_at is not None and sent + len(piece) > drop_at:
                piece = piece[: max(0, drop_at - sent)]
                if piece:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                    record.bytes_sent += len(piece)
                raise ConnectionAbortedError("emulated connection drop")
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            sent += len(piece)
            record.bytes_sent += len(piece)
            if stall is not None and sent >= stall[0]:
                await asyncio.sleep(stall[1])
                stall = None
            if self.faults.piece_delay:
                await asyncio.sleep(self.faults.piece_delay)
        await send({"type": "http.response.body", "body": b""})


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance in degrees (haversine)."""
    p1, p2 = math.radians(dec1), math.radians(dec2)
    dp = p2 - p1
    dl = math.radians(ra2 - ra1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(a))))


def _matches(row: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    for entry in filters:
        value = row.get(entry["paramName"])
        values = entry.get("values", [])
        if entry.get("freeText"):
            pattern = str(entry["freeText"]).replace("%", "*")
            if not fnmatch.fnmatchcase(str(value), pattern):
                return False
            continue
        if values and isinstance(values[0], dict):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return False
            if not any(v["min"] <= value <= v["max"] for v in values):
                return False
        elif values and str(value) not in {str(v) for v in values}:
            return False
    return True
