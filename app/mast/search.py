"""MAST searches, product lists, name resolution and cloud path lookup.

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
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
import requests
from cachetools import TTLCache
from requests.adapters import HTTPAdapter

from app.core.exceptions import DomainError, NotFoundError, UpstreamError, UpstreamTimeoutError
from app.core.settings import Settings
from app.mast.schemas import MastSearchResponse, ProductsResponse

logger = logging.getLogger("app.mast.service")

T = TypeVar("T")

#: Columns whose ``mast:`` URIs are rewritten to download links on ``MAST_BASE_URL``.
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
    """Return the current time as a Modified Julian Date."""
    return time.time() / 86400.0 + MJD_UNIX_EPOCH


def download_url(base_url: str, uri: str) -> str:
    """Return the ``Download/file`` link of a ``mast:`` URI on ``base_url``."""
    return f"{base_url}{DOWNLOAD_PATH}?uri={quote(uri)}"


def _plain(value: Any) -> Any:
    """Return a JSON-safe version of one table cell."""
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
        _link_urls(rows, base_url)
    return rows


def _link_urls(rows: list[dict[str, Any]], base_url: str) -> None:
    """Turn the ``mast:`` URIs of the URL columns into download links on ``base_url``, in place."""
    for row in rows:
        for key in URL_COLUMNS:
            value = row.get(key)
            if isinstance(value, str) and value.startswith("mast:"):
                row[key] = download_url(base_url, value)


def _cloud_key(body: Any, uri: str) -> str | None:
    """Return the bucket key of ``uri`` in a path lookup reply, or ``None`` when it has none."""
    entry = body.get(uri) if isinstance(body, dict) else None
    path = entry.get("path") if isinstance(entry, dict) else None
    return path.lstrip("/") if isinstance(path, str) and path.strip("/") else None


def name_variants(name: str) -> list[str]:
    """Return the spellings of a target name tried in turn, without duplicates."""
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
    """Return the domain error of an exception raised inside astroquery."""
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


class ObservationNotFoundError(NotFoundError):
    """MAST knows no observation with the requested ``obs_id``."""


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
    """Return a fresh astroquery client (its per-query state is not thread-safe) with bounded requests."""
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
    """Return the product rows of the given CAOM ``obsid`` values (blocking)."""
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


def _calib(calib_level: list[int] | None) -> dict[str, Any]:
    """Return the ``calib_level`` criterion (none: every level)."""
    return {} if calib_level is None else {"calib_level": sorted(calib_level)}


def _calib_key(calib_level: list[int] | None) -> tuple[tuple[int, ...], bool]:
    """Return the part of a cache key that identifies a ``calib_level`` request."""
    return tuple(sorted(calib_level or [])), calib_level is None


def _timed_out(time_limit: float) -> UpstreamTimeoutError:
    return UpstreamTimeoutError(
        f"MAST search timed out after {time_limit:g} seconds. Try a smaller radius or a more specific query."
    )


class SearchKind(StrEnum):
    """The five searches ; the value is the ``search_type`` of the reply."""

    TARGET = "target"
    COORDINATES = "coordinates"
    OBSERVATION = "observation_id"
    PROGRAM = "program_id"
    RECENT = "recent_releases"


@dataclass(frozen=True)
class SearchCriteria:
    """What one search asks MAST, and what its reply echoes.

    Attributes
    ----------
    query_params
        The request as the reply echoes it in ``query_params``.
    cache_key
        What makes two requests of the same kind the same search.
    ids
        CAOM criteria that name what is searched (``obs_id``, ``proposal_id``).
    refine
        CAOM criteria that narrow it (``calib_level``, ``instrument_name``).
    days_back
        Only observations released in the last ``days_back`` days; ``None``: every public one.
    target_name
        A name resolved to the cone centre first; the resolution and the query then share one timeout.
    center
        The cone centre ``(ra, dec)`` in degrees.
    radius
        The cone radius in degrees; ``None``: no cone.
    page
        ``(offset, limit)`` of the rows sorted newest release first; ``None``: every row as MAST sends it.
    """

    query_params: dict[str, Any]
    cache_key: tuple[Any, ...]
    ids: dict[str, Any] = field(default_factory=dict)
    refine: dict[str, Any] = field(default_factory=dict)
    days_back: int | None = None
    target_name: str | None = None
    center: tuple[float, float] | None = None
    radius: float | None = None
    page: tuple[int, int] | None = None

    def caom(self) -> dict[str, Any]:
        """Return the CAOM criteria, with the release window as of now."""
        now = today_mjd()
        window = [0.0, now] if self.days_back is None else [now - self.days_back, now]
        return {**self.ids, "t_obs_release": window, **self.refine}

    def cone(self, center: tuple[float, float] | None) -> tuple[float, float, float] | None:
        """Return ``(ra, dec, radius)`` of the cone around ``center``, or ``None`` without one."""
        if center is None or self.radius is None:
            return None
        return center[0], center[1], self.radius

    def paged(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Return the requested page of ``rows``, newest release first (every row without a page)."""
        if self.page is None:
            return rows
        rows.sort(key=lambda r: r.get("t_obs_release") or 0.0, reverse=True)
        offset, limit = self.page
        return rows[offset : offset + limit]


def _by_id(name: str, column: str, value: str, calib_level: list[int] | None) -> SearchCriteria:
    """Return the criteria of the observations whose CAOM ``column`` is ``value`` (echoed as ``name``)."""
    return SearchCriteria(
        query_params={name: value, "calib_level": calib_level},
        cache_key=(value, *_calib_key(calib_level)),
        ids={column: value},
        refine=_calib(calib_level),
    )


def _cone(
    params: dict[str, Any],
    key: tuple[Any, ...],
    calib_level: list[int] | None,
    *,
    radius: float,
    center: tuple[float, float] | None = None,
    target_name: str | None = None,
) -> SearchCriteria:
    """Return the criteria of a cone search of ``radius`` degrees around ``center`` or a named target."""
    return SearchCriteria(
        query_params=params,
        cache_key=(*key, *_calib_key(calib_level)),
        refine=_calib(calib_level),
        target_name=target_name,
        center=center,
        radius=radius,
    )


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
        self._cache: TTLCache[tuple[Any, ...], MastSearchResponse] = TTLCache(
            maxsize=settings.mast_search_cache_size, ttl=settings.mast_search_cache_ttl
        )

    def close(self) -> None:
        """Stop the query threads (running astroquery calls end at their request timeout)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- helpers --------------------------------------------------------------------------------------------

    async def _in_thread(self, fn: Callable[..., T], /, *args: Any, time_limit: float | None, **kwargs: Any) -> T:
        """Run a blocking astroquery call in a thread, mapping its errors and the time limit."""
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        try:
            if time_limit is None:
                return await loop.run_in_executor(self._executor, call)
            return await asyncio.wait_for(loop.run_in_executor(self._executor, call), time_limit)
        except TimeoutError as error:
            if time_limit is None:
                raise _map_astroquery_error(error) from error
            raise _timed_out(time_limit) from error
        except Exception as error:
            mapped = _map_astroquery_error(error)
            logger.warning("mast_query_failed", extra={"error": type(error).__name__, "detail": str(error)})
            raise mapped from error

    async def _with_time_limit(self, work: Awaitable[T]) -> T:
        """Await ``work`` within ``MAST_SEARCH_TIMEOUT``."""
        time_limit = self.settings.mast_search_timeout
        try:
            return await asyncio.wait_for(work, time_limit)
        except TimeoutError as error:
            raise _timed_out(time_limit) from error

    async def _cached(
        self, key: tuple[Any, ...], build: Callable[[], Awaitable[MastSearchResponse]]
    ) -> MastSearchResponse:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        result = await build()
        self._cache[key] = result
        return result

    # --- name resolution and cloud paths --------------------------------------------------------------------

    async def lookup_name(self, name: str) -> tuple[float, float] | None:
        """Resolve one spelling with ``Mast.Name.Lookup``; return ``None`` when MAST does not know it."""
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
        """Return the coordinates of a target, trying the spelling variants in turn."""
        variants = name_variants(target_name)
        for variant in variants:
            found = await self.lookup_name(variant)
            if found is not None:
                return found
        raise NotFoundError(f"Could not resolve target name '{target_name}' using variants: {variants}")

    async def cloud_keys(self, uris: list[str]) -> dict[str, str | None]:
        """Return the S3 keys of ``mast:`` URIs from MAST's cloud path lookup (``None``: not in the bucket)."""
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
                keys[uri] = _cloud_key(body, uri)
        return keys

    # --- searches -----------------------------------------------------------------------------------

    async def _query(self, criteria: SearchCriteria) -> list[dict[str, Any]]:
        """Return the CAOM rows of a search (its cone centre resolved first when it names a target)."""
        if criteria.target_name is None:
            return await self._in_thread(
                _query_observations,
                self.base_url,
                position=criteria.cone(criteria.center),
                time_limit=self.settings.mast_search_timeout,
                **criteria.caom(),
            )
        target_name = criteria.target_name

        async def resolve_then_query() -> list[dict[str, Any]]:
            center = await self.resolve_target(target_name)
            return await self._in_thread(
                _query_observations, self.base_url, position=criteria.cone(center), time_limit=None, **criteria.caom()
            )

        return await self._with_time_limit(resolve_then_query())

    async def _search(self, kind: SearchKind, criteria: SearchCriteria) -> MastSearchResponse:
        """Run one search through the cache and return its reply: every public search goes through here."""

        async def build() -> MastSearchResponse:
            rows = criteria.paged(await self._query(criteria))
            _link_urls(rows, self.base_url)
            return MastSearchResponse(
                search_type=kind,
                query_params=criteria.query_params,
                results=rows,
                result_count=len(rows),
                timestamp=datetime.now(UTC).isoformat(),
            )

        return await self._cached((kind, *criteria.cache_key), build)

    async def search_target(self, target_name: str, radius: float, calib_level: list[int] | None) -> MastSearchResponse:
        """Resolve a target name, then return a cone search of ``radius`` degrees around it (``search/target``)."""
        params = {"target_name": target_name, "radius": radius, "calib_level": calib_level}
        key = (target_name.strip().lower(), radius)
        criteria = _cone(params, key, calib_level, target_name=target_name, radius=radius)
        return await self._search(SearchKind.TARGET, criteria)

    async def search_coordinates(
        self, ra: float, dec: float, radius: float, calib_level: list[int] | None
    ) -> MastSearchResponse:
        """Return a cone search of ``radius`` degrees around ``(ra, dec)`` (``POST /mast/search/coordinates``)."""
        params = {"ra": ra, "dec": dec, "radius": radius, "calib_level": calib_level}
        criteria = _cone(params, (ra, dec, radius), calib_level, center=(ra, dec), radius=radius)
        return await self._search(SearchKind.COORDINATES, criteria)

    async def search_observation(self, obs_id: str, calib_level: list[int] | None) -> MastSearchResponse:
        """Return the observations named ``obs_id`` (``POST /mast/search/observation``)."""
        return await self._search(SearchKind.OBSERVATION, _by_id("obs_id", "obs_id", obs_id, calib_level))

    async def search_program(self, program_id: str, calib_level: list[int] | None) -> MastSearchResponse:
        """Return the observations of proposal ``program_id`` (``POST /mast/search/program``)."""
        return await self._search(SearchKind.PROGRAM, _by_id("program_id", "proposal_id", program_id, calib_level))

    async def search_recent(
        self, days_back: int, instrument: str | None, limit: int, offset: int
    ) -> MastSearchResponse:
        """Return the releases of the last ``days_back`` days, newest first, then ``offset``/``limit``."""
        instrument_name = instrument.strip().upper() if instrument else None
        criteria = SearchCriteria(
            query_params={"days_back": days_back, "instrument": instrument_name, "limit": limit, "offset": offset},
            cache_key=(days_back, instrument_name, limit, offset),
            refine={"instrument_name": f"{instrument_name}*"} if instrument_name else {},
            days_back=days_back,
            page=(offset, limit),
        )
        return await self._search(SearchKind.RECENT, criteria)

    # --- products (the products route and download jobs) --------------------------------------------------

    async def _all_products(self, obs_id: str, *, require_observation: bool = False) -> list[dict[str, Any]]:
        observations = await self._in_thread(_query_observations, self.base_url, time_limit=None, obs_id=obs_id)
        obsids = sorted({str(row["obsid"]) for row in observations if row.get("obsid") not in (None, "")})
        if require_observation and not obsids:
            raise ObservationNotFoundError(f"Observation {obs_id} was not found in MAST")
        return await self._in_thread(_query_products, self.base_url, obsids, time_limit=None)

    async def products(self, obs_id: str) -> ProductsResponse:
        """Return the science FITS products of ``obs_id``, none for an unknown observation (``POST /mast/products``)."""
        rows = await self._with_time_limit(self._all_products(obs_id))
        products = filter_products(rows, product_type="SCIENCE")
        return ProductsResponse(obs_id=obs_id, products=products, product_count=len(products))

    async def download_products(
        self,
        obs_id: str,
        *,
        product_type: str | None,
        calib_level: list[int] | None,
        exclude_spectral: bool,
        require_observation: bool = False,
    ) -> list[dict[str, Any]]:
        """Return the products a download job fetches (no time limit, as the contract says).

        With ``require_observation``, an observation MAST does not know raises
        :class:`ObservationNotFoundError` instead of giving no products.
        """
        rows = await self._all_products(obs_id, require_observation=require_observation)
        return filter_products(
            rows, product_type=product_type, calib_level=calib_level, exclude_spectral=exclude_spectral
        )
