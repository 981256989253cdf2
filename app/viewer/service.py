"""Viewer service: check what needs no file, then run the job on the executor with the storage key.

Query parameters are checked first (400 before any file lookup, as the contract requires: their
ranges by the query models, the stretch name here); the job opens the key where it runs (403, 404
or 400 path errors) and reads the pixels.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from app.core.executor import JobExecutor
from app.core.settings import Settings
from app.processing import encoding
from app.processing.enhancement import StretchSettings
from app.schemas import core_stretch, resolve_stretch
from app.viewer import jobs
from app.viewer.schemas import (
    AVM_METADATA_KEYS,
    CubeInfoQuery,
    CubeInfoResponse,
    HistogramQuery,
    HistogramResponse,
    PixelDataQuery,
    PixelDataResponse,
    PreviewQuery,
    ThumbnailRequest,
    ThumbnailResponse,
    ViewerDisplay,
)

logger = logging.getLogger("app.viewer.service")


@dataclass(frozen=True)
class PreviewImage:
    """Encoded preview bytes and the cube position headers."""

    content: bytes
    media_type: str
    n_slices: int
    current_slice: int

    @property
    def headers(self) -> dict[str, str]:
        """Return the cube position headers of the response."""
        return {"X-Cube-Slices": str(self.n_slices), "X-Cube-Current": str(self.current_slice)}


def parse_avm_metadata(raw: str | None) -> dict[str, str] | None:
    """Return the JSON object of ``avm_metadata`` reduced to the known keys; invalid JSON is ignored."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, TypeError):
        logger.info("avm_metadata_ignored")
        return None
    if not isinstance(value, dict):
        return None
    out = {k: str(value[k]) for k in AVM_METADATA_KEYS if isinstance(value.get(k), str | int | float)}
    return out or None


def viewer_stretch(display: ViewerDisplay) -> StretchSettings:
    """Return the core stretch of the viewer's display parameters; an unknown stretch is 400 (the contract)."""
    name, _ = resolve_stretch(display.stretch, on_unknown="reject")
    return core_stretch(display, name)


async def thumbnail(executor: JobExecutor, request: ThumbnailRequest) -> ThumbnailResponse:
    """``POST /thumbnail``: a ~256 px PNG of the file, base64."""
    png = await executor.run(jobs.render_thumbnail, request.file_path, request.hdu_choice())
    return ThumbnailResponse(thumbnail_base64=base64.b64encode(png).decode("ascii"))


async def preview(executor: JobExecutor, settings: Settings, file_path: str, query: PreviewQuery) -> PreviewImage:
    """``GET /preview``: check the stretch, resolve, render in a worker."""
    stretch = viewer_stretch(query)
    metadata = parse_avm_metadata(query.avm_metadata)
    content, n_slices, current = await executor.run(
        jobs.render_preview, file_path, query, stretch, settings.max_fits_array_elements, metadata
    )
    return PreviewImage(content, encoding.MEDIA_TYPES[query.image_format], n_slices, current)


async def histogram(
    executor: JobExecutor,
    settings: Settings,
    data_id: str,
    file_path: str,
    query: HistogramQuery,
) -> HistogramResponse:
    """``GET /histogram``: check the stretch, resolve, compute in a worker."""
    stretch = viewer_stretch(query)
    result: dict[str, Any] = await executor.run(
        jobs.compute_histogram, file_path, query, stretch, query.bins, settings.max_fits_array_elements
    )
    return HistogramResponse(data_id=data_id, **result)


async def pixel_data(
    executor: JobExecutor,
    settings: Settings,
    data_id: str,
    file_path: str,
    query: PixelDataQuery,
) -> PixelDataResponse:
    """``GET /pixeldata``: resolve, read in a worker."""
    result: dict[str, Any] = await executor.run(
        jobs.pixel_data,
        file_path,
        query.max_size,
        query.slice_index,
        settings.max_fits_array_elements,
        query.hdu_choice(),
    )
    return PixelDataResponse(data_id=data_id, **result)


async def cube_info(
    executor: JobExecutor, data_id: str, file_path: str, query: CubeInfoQuery | None = None
) -> CubeInfoResponse:
    """``GET /cubeinfo``: headers only, still off the event loop."""
    choice = query.hdu_choice() if query is not None else None
    result: dict[str, Any] = await executor.run(jobs.cube_info, file_path, choice)
    return CubeInfoResponse(data_id=data_id, **result)
