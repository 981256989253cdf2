"""MAST searches, product lists, name resolution and cloud path lookup (contract 0, 5.1, 5.2).

Searches and product lists go through astroquery, whose four ``PortalAPI`` URLs are pointed at
``MAST_BASE_URL`` by :func:`configure_astroquery`. astroquery is synchronous, so every call runs
in a worker thread under ``MAST_SEARCH_TIMEOUT``. Name resolution (``Mast.Name.Lookup``) and the
cloud path lookup are made by the proxy itself with httpx, because astroquery hard-codes their
hosts. Rows become plain JSON: NaN/Inf and masked cells become ``null``, numpy scalars native
values, and ``mast:`` URIs in ``jpegURL``/``dataURL`` become download links on ``MAST_BASE_URL``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
import requests
from cachetools import TTLCache
from requests.adapters import HTTPAdapter

from app.core.exceptions import DomainError, NotFoundError, UpstreamError, UpstreamTimeoutError
from app.core.settings import Settings

logger = logging.getLogger("app.mast.service")

T = TypeVar("T")
SearchType = Literal["target", "coordinates", "observation_id", "program_id", "recent_releases"]

#: Columns whose ``mast:`` URIs are rewritten to download links (contract 5.1).
URL_COLUMNS = ("jpegURL", "dataURL")
#: Paths of the MAST API below ``MAST_BASE_URL``.
INVOKE_PATH = "/api/v0/invoke"
COLUMNS_CONFIG_PATH = "/portal/Mashup/Mashup.asmx/columnsconfig"
DOWNLOAD_PATH = "/api/v0.1/Download/file"
BUNDLE_PATH = "/api/v0.1/Download/bundle"
PATH_LOOKUP_PATH = "/api/v0.1/path_lookup/"
#: astroquery sends at most this many URIs per path lookup (long URLs give 414).
PATH_LOOKUP_BATCH = 50
SEARCH_PAGESIZE = 500
SPECTRAL_SUFFIXES = ("_x1d", "_x1dints", "_c1d")
MJD_UNIX_EPOCH = 40587.0
#: Bound of each HTTP request astroquery makes (it passes none), so abandoned threads end.
ASTROQUERY_REQUEST_TIMEOUT = 300.0
#: Threads reserved for astroquery, apart from the default pool that downloads write through.
QUERY_THREADS = 8


def configure_astroquery(base_url: str) -> None:
    """Point astroquery's MAST URLs at ``base_url`` (class attributes, fixed at import).

    Parameters
    ----------
    base_url
        ``MAST_BASE_URL`` without a trailing slash.
    """
    from astroquery.mast.discovery_portal import PortalAPI

    PortalAPI.MAST_REQUEST_URL = base_url + INVOKE_PATH
    PortalAPI.COLUMNS_CONFIG_URL = base_url + COLUMNS_CONFIG_PATH
    PortalAPI.MAST_DOWNLOAD_URL = base_url + DOWNLOAD_PATH
    PortalAPI.MAST_BUNDLE_URL = base_url + BUNDLE_PATH


def today_mjd() -> float:
    """The current time as a Modified Julian Date."""
    return time.time() / 86400.0 + MJD_UNIX_EPOCH


def download_url(base_url: str, uri: str) -> str:
    """The ``Download/file`` link of a ``mast:`` URI on ``base_url``."""
    return f"{base_url}{DOWNLOAD_PATH}?uri={quote(uri)}"


def _plain(value: Any) -> Any:
    """A JSON-safe version of one table cell."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def serialize_rows(table: Any, *, base_url: str | None = None) -> list[dict[str, Any]]:
    """Turn an astropy table into JSON rows.

    Parameters
    ----------
    table
        The table astroquery returned (masked cells allowed).
    base_url
        When given, ``mast:`` URIs in ``jpegURL``/``dataURL`` become download links on it.

    Returns
    -------
    list of dict
        One dict per row with every column; masked, NaN and Inf cells are ``None``.
    """
    if table is None or len(table) == 0:
        return []
    columns: dict[str, list[Any]] = {}
    for name in table.colnames:
        # MaskedArray.tolist() yields None for masked cells and native Python scalars otherwise.
        columns[name] = [_plain(v) for v in np.ma.asarray(table[name]).tolist()]
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    if base_url is not None:
        for row in rows:
            for key in URL_COLUMNS:
                value = row.get(key)
                if isinstance(value, str) and value.startswith("mast:"):
                    row[key] = download_url(base_url, value)
    return rows


def name_variants(name: str) -> list[str]:
    """Spellings of a target name tried in turn (contract 5.1), without duplicates."""
    collapsed = " ".join(name.split())
    spaced = " ".join(re.sub(r"[-_]", " ", collapsed).split())
    dashed = re.sub(r"[\s_]+", "-", collapsed)
    compact = re.sub(r"[\s\-_]+", "", collapsed)
    boundary = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", compact)
    variants: list[str] = []
    for candidate in (collapsed, spaced, dashed, boundary, compact):
        if candidate and candidate not in variants:
            variants.append(candidate)
    return variants


def _map_astroquery_error(error: Exception) -> DomainError:
    """Translate an exception raised inside astroquery into a domain error."""
    from astroquery.exceptions import RemoteServiceError

    if isinstance(error, DomainError):
        return error
    if isinstance(error, requests.Timeout | TimeoutError):
        return UpstreamTimeoutError("MAST did not answer in time")
    if isinstance(error, requests.HTTPError):
        status = error.response.status_code if error.response is not None else "?"
        return UpstreamError(f"MAST answered with HTTP {status}")
    if isinstance(error, requests.ConnectionError):
        return UpstreamError("MAST is unreachable")
    if isinstance(error, RemoteServiceError):
        return UpstreamError("MAST reported an error for this query")
    if isinstance(error, ValueError | KeyError | TypeError | IndexError):
        return UpstreamError("MAST returned a malformed response")
    if isinstance(error, requests.RequestException):
        return UpstreamError("MAST request failed")
    return UpstreamError("MAST query failed")


class _TimeoutAdapter(HTTPAdapter):
    """A requests adapter with a default timeout (astroquery's MAST calls pass none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, *args, **kwargs)


def _observations(base_url: str, timeout: float) -> Any:
    """A fresh astroquery client (its per-query state is not thread-safe) with bounded requests."""
    configure_astroquery(base_url)
    from astroquery.mast import ObservationsClass

    observations = ObservationsClass()
    adapter = _TimeoutAdapter(timeout)
    observations._session.mount("http://", adapter)
    observations._session.mount("https://", adapter)
    return observations


def _query_observations(
    base_url: str, *, position: tuple[float, float, float] | None = None, **criteria: Any
) -> list[dict[str, Any]]:
    """Run one CAOM query with astroquery (blocking; call in a thread)."""
    observations = _observations(base_url, ASTROQUERY_REQUEST_TIMEOUT)
    if position is not None:
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        ra, dec, radius = position
        criteria["coordinates"] = SkyCoord(ra, dec, unit="deg")
        criteria["radius"] = radius * u.deg
    table = observations.query_criteria(pagesize=SEARCH_PAGESIZE, obs_collection="JWST", **criteria)
    return serialize_rows(table)


def _query_products(base_url: str, obsids: list[str]) -> list[dict[str, Any]]:
    """The product rows of the given CAOM ``obsid`` values (blocking)."""
    if not obsids:
        return []
    table = _observations(base_url, ASTROQUERY_REQUEST_TIMEOUT).get_product_list(obsids)
    return serialize_rows(table)


def filter_products(
    products: Iterable[dict[str, Any]],
    *,
    product_type: str | None = "SCIENCE",
    calib_level: list[int] | None = None,
    exclude_spectral: bool = False,
) -> list[dict[str, Any]]:
    """Keep FITS products of the given type and calibration levels, one row per filename."""
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in products:
        filename = str(row.get("productFilename") or "")
        if not filename.lower().endswith(".fits"):
            continue
        if product_type is not None and str(row.get("productType") or "").upper() != product_type.upper():
            continue
        if calib_level is not None and row.get("calib_level") not in calib_level:
            continue
        stem = filename.rsplit(".", 1)[0]
        if exclude_spectral and stem.endswith(SPECTRAL_SUFFIXES):
            continue
        if filename in seen:
            continue
        seen.add(filename)
        kept.append(row)
    return kept


class MastService:
    """Searches and lookups against the MAST API at ``MAST_BASE_URL``.

    Parameters
    ----------
    settings
        The proxy settings (base URL, search timeout, cache bounds).
    http
        The shared httpx client (name resolution and cloud path lookup).
    """

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.base_url = settings.mast_base_url
        self.http = http
        self._executor = ThreadPoolExecutor(max_workers=QUERY_THREADS, thread_name_prefix="mast-query")
        self._cache: TTLCache[tuple[Any, ...], dict[str, Any]] = TTLCache(
            maxsize=settings.mast_search_cache_size, ttl=settings.mast_search_cache_ttl
        )

    def close(self) -> None:
        """Stop the query threads (running astroquery calls end at their request timeout)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- helpers ---------------------------------------------------------------------------

    async def _in_thread(self, fn: Callable[..., T], /, *args: Any, timeout: float | None, **kwargs: Any) -> T:
        """Run a blocking astroquery call in a thread, mapping its errors and the timeout."""
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        try:
            if timeout is None:
                return await loop.run_in_executor(self._executor, call)
            return await asyncio.wait_for(loop.run_in_executor(self._executor, call), timeout)
        except TimeoutError as error:
            if timeout is None:
                raise _map_astroquery_error(error) from error
            raise UpstreamTimeoutError(
                f"MAST search timed out after {timeout:g} seconds. Try a smaller radius or a more specific query."
            ) from error
        except Exception as error:
            mapped = _map_astroquery_error(error)
            logger.warning("mast_query_failed", extra={"error": type(error).__name__, "detail": str(error)})
            raise mapped from error

    async def _with_timeout(self, coro: Any) -> Any:
        timeout = self.settings.mast_search_timeout
        try:
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError as error:
            raise UpstreamTimeoutError(
                f"MAST search timed out after {timeout:g} seconds. Try a smaller radius or a more specific query."
            ) from error

    def _public(self) -> dict[str, Any]:
        return {"t_obs_release": [0.0, today_mjd()]}

    @staticmethod
    def _calib(calib_level: list[int] | None) -> dict[str, Any]:
        return {} if calib_level is None else {"calib_level": sorted(calib_level)}

    def _response(self, search_type: SearchType, params: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
        for row in rows:
            for key in URL_COLUMNS:
                value = row.get(key)
                if isinstance(value, str) and value.startswith("mast:"):
                    row[key] = download_url(self.base_url, value)
        return {
            "search_type": search_type,
            "query_params": params,
            "results": rows,
            "result_count": len(rows),
            "timestamp": datetime.now(UTC).isoformat(),
        }

    async def _cached(self, key: tuple[Any, ...], build: Callable[[], Any]) -> dict[str, Any]:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result: dict[str, Any] = await build()
        self._cache[key] = result
        return result

    # --- name resolution and cloud paths ------------------------------------------------------

    async def lookup_name(self, name: str) -> tuple[float, float] | None:
        """Resolve one spelling with ``Mast.Name.Lookup``; ``None`` when MAST does not know it."""
        request = {"service": "Mast.Name.Lookup", "params": {"input": name, "format": "json"}, "format": "json"}
        try:
            response = await self.http.post(self.base_url + INVOKE_PATH, data={"request": json.dumps(request)})
        except httpx.TimeoutException as error:
            raise UpstreamTimeoutError("MAST name resolution timed out") from error
        except httpx.HTTPError as error:
            raise UpstreamError("MAST is unreachable") from error
        if response.status_code >= 500:
            raise UpstreamError(f"MAST answered with HTTP {response.status_code}")
        if response.status_code >= 400:
            return None
        try:
            body = response.json()
            resolved = body.get("resolvedCoordinate") or []
            if not resolved:
                return None
            return float(resolved[0]["ra"]), float(resolved[0]["decl"])
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            raise UpstreamError("MAST returned a malformed name resolution response") from error

    async def resolve_target(self, target_name: str) -> tuple[float, float]:
        """Coordinates of a target, trying the spelling variants in turn."""
        variants = name_variants(target_name)
        for variant in variants:
            found = await self.lookup_name(variant)
            if found is not None:
                return found
        raise NotFoundError(f"Could not resolve target name '{target_name}' using variants: {variants}")

    async def cloud_keys(self, uris: list[str]) -> dict[str, str | None]:
        """S3 keys of ``mast:`` URIs from MAST's cloud path lookup (``None``: not in the bucket)."""
        keys: dict[str, str | None] = {}
        for start in range(0, len(uris), PATH_LOOKUP_BATCH):
            batch = uris[start : start + PATH_LOOKUP_BATCH]
            try:
                response = await self.http.get(self.base_url + PATH_LOOKUP_PATH, params=[("uri", u) for u in batch])
                response.raise_for_status()
                body = response.json()
            except httpx.HTTPError as error:
                raise UpstreamError("MAST cloud path lookup failed") from error
            except ValueError as error:
                raise UpstreamError("MAST returned a malformed cloud path lookup response") from error
            for uri in batch:
                entry = body.get(uri) if isinstance(body, dict) else None
                path = entry.get("path") if isinstance(entry, dict) else None
                keys[uri] = path.lstrip("/") if isinstance(path, str) and path.strip("/") else None
        return keys

    # --- searches (P3-P7) --------------------------------------------------------------------

    async def search_target(self, target_name: str, radius: float, calib_level: list[int] | None) -> dict[str, Any]:
        """P3: resolve the name, then a cone search of ``radius`` degrees."""
        key = ("target", target_name.strip().lower(), radius, tuple(sorted(calib_level or [])), calib_level is None)

        async def build() -> dict[str, Any]:
            async def run() -> list[dict[str, Any]]:
                ra, dec = await self.resolve_target(target_name)
                return await self._in_thread(
                    _query_observations,
                    self.base_url,
                    position=(ra, dec, radius),
                    timeout=None,
                    **self._public(),
                    **self._calib(calib_level),
                )

            rows = await self._with_timeout(run())
            params = {"target_name": target_name, "radius": radius, "calib_level": calib_level}
            return self._response("target", params, rows)

        return await self._cached(key, build)

    async def search_coordinates(
        self, ra: float, dec: float, radius: float, calib_level: list[int] | None
    ) -> dict[str, Any]:
        """P4: a cone search of ``radius`` degrees around ``(ra, dec)``."""
        key = ("coordinates", ra, dec, radius, tuple(sorted(calib_level or [])), calib_level is None)

        async def build() -> dict[str, Any]:
            rows = await self._in_thread(
                _query_observations,
                self.base_url,
                position=(ra, dec, radius),
                timeout=self.settings.mast_search_timeout,
                **self._public(),
                **self._calib(calib_level),
            )
            params = {"ra": ra, "dec": dec, "radius": radius, "calib_level": calib_level}
            return self._response("coordinates", params, rows)

        return await self._cached(key, build)

    async def search_observation(self, obs_id: str, calib_level: list[int] | None) -> dict[str, Any]:
        """P5: the observations named ``obs_id``."""
        key = ("observation", obs_id, tuple(sorted(calib_level or [])), calib_level is None)

        async def build() -> dict[str, Any]:
            rows = await self._in_thread(
                _query_observations,
                self.base_url,
                timeout=self.settings.mast_search_timeout,
                obs_id=obs_id,
                **self._public(),
                **self._calib(calib_level),
            )
            return self._response("observation_id", {"obs_id": obs_id, "calib_level": calib_level}, rows)

        return await self._cached(key, build)

    async def search_program(self, program_id: str, calib_level: list[int] | None) -> dict[str, Any]:
        """P6: the observations of proposal ``program_id``."""
        key = ("program", program_id, tuple(sorted(calib_level or [])), calib_level is None)

        async def build() -> dict[str, Any]:
            rows = await self._in_thread(
                _query_observations,
                self.base_url,
                timeout=self.settings.mast_search_timeout,
                proposal_id=program_id,
                **self._public(),
                **self._calib(calib_level),
            )
            return self._response("program_id", {"program_id": program_id, "calib_level": calib_level}, rows)

        return await self._cached(key, build)

    async def search_recent(self, days_back: int, instrument: str | None, limit: int, offset: int) -> dict[str, Any]:
        """P7: releases of the last ``days_back`` days, newest first, then ``offset``/``limit``."""
        instrument_name = instrument.strip().upper() if instrument else None
        key = ("recent", days_back, instrument_name, limit, offset)

        async def build() -> dict[str, Any]:
            now = today_mjd()
            criteria: dict[str, Any] = {"t_obs_release": [now - days_back, now]}
            if instrument_name:
                criteria["instrument_name"] = f"{instrument_name}*"
            rows = await self._in_thread(
                _query_observations, self.base_url, timeout=self.settings.mast_search_timeout, **criteria
            )
            rows.sort(key=lambda r: r.get("t_obs_release") or 0.0, reverse=True)
            page = rows[offset : offset + limit]
            params = {"days_back": days_back, "instrument": instrument_name, "limit": limit, "offset": offset}
            return self._response("recent_releases", params, page)

        return await self._cached(key, build)

    # --- products (P8 and download jobs) ---------------------------------------------------------

    async def _all_products(self, obs_id: str, timeout: float | None) -> list[dict[str, Any]]:
        observations = await self._in_thread(_query_observations, self.base_url, timeout=timeout, obs_id=obs_id)
        obsids = sorted({str(row["obsid"]) for row in observations if row.get("obsid") not in (None, "")})
        return await self._in_thread(_query_products, self.base_url, obsids, timeout=timeout)

    async def products(self, obs_id: str) -> list[dict[str, Any]]:
        """P8: the science FITS products of ``obs_id`` (``[]`` for an unknown observation)."""
        rows = await self._with_timeout(self._all_products(obs_id, None))
        return filter_products(rows, product_type="SCIENCE")

    async def download_products(
        self,
        obs_id: str,
        *,
        product_type: str | None,
        calib_level: list[int] | None,
        exclude_spectral: bool,
    ) -> list[dict[str, Any]]:
        """Products a download job fetches (no timeout, as the contract says)."""
        rows = await self._all_products(obs_id, None)
        return filter_products(
            rows, product_type=product_type, calib_level=calib_level, exclude_spectral=exclude_spectral
        )
