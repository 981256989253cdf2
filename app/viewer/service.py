"""Viewer service: resolve storage keys, then run the heavy job on the executor.

Validation of query parameters happens first (400 before any file lookup, as the contract
requires), then the key is resolved (403/404/400 path errors), then the job runs in a worker.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from app.core.exceptions import InvalidRequestError
from app.core.executor import JobExecutor
from app.core.settings import Settings
from app.storage.provider import StorageProvider
from app.viewer import render
from app.viewer.schemas import (
    AVM_METADATA_KEYS,
    BINS_RANGE,
    PIXELDATA_SIZE_RANGE,
    CubeInfoResponse,
    DisplayParams,
    HistogramResponse,
    PixelDataResponse,
    PreviewParams,
    ThumbnailResponse,
)

logger = logging.getLogger("app.viewer.service")

MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}


@dataclass(frozen=True)
class PreviewImage:
    """Encoded preview bytes and the cube position headers."""

    content: bytes
    media_type: str
    n_slices: int
    current_slice: int

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Cube-Slices": str(self.n_slices), "X-Cube-Current": str(self.current_slice)}


def parse_avm_metadata(raw: str | None) -> dict[str, str] | None:
    """The JSON object of ``avm_metadata`` reduced to the known keys; invalid JSON is ignored."""
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


async def thumbnail(storage: StorageProvider, executor: JobExecutor, file_path: str) -> ThumbnailResponse:
    """``POST /thumbnail``: a ~256 px PNG of the file, base64."""
    path = await storage.resolve(file_path)
    png = await executor.run(render.render_thumbnail, path)
    return ThumbnailResponse(thumbnail_base64=base64.b64encode(png).decode("ascii"))


async def preview(
    storage: StorageProvider, executor: JobExecutor, settings: Settings, file_path: str, params: PreviewParams
) -> PreviewImage:
    """``GET /preview``: validate, resolve, render in a worker."""
    params.validate()
    path = await storage.resolve(file_path)
    content, n_slices, current = await executor.run(
        render.render_preview, path, params, settings.max_fits_array_elements
    )
    return PreviewImage(content, MEDIA_TYPES[params.image_format], n_slices, current)


async def histogram(
    storage: StorageProvider,
    executor: JobExecutor,
    settings: Settings,
    data_id: str,
    file_path: str,
    display: DisplayParams,
    bins: int,
) -> HistogramResponse:
    """``GET /histogram``: validate, resolve, compute in a worker."""
    display.validate()
    if not BINS_RANGE[0] <= bins <= BINS_RANGE[1]:
        raise InvalidRequestError(f"bins must be between {BINS_RANGE[0]} and {BINS_RANGE[1]}, got {bins}")
    path = await storage.resolve(file_path)
    result: dict[str, Any] = await executor.run(
        render.compute_histogram, path, display, bins, settings.max_fits_array_elements
    )
    return HistogramResponse(data_id=data_id, **result)


async def pixel_data(
    storage: StorageProvider,
    executor: JobExecutor,
    settings: Settings,
    data_id: str,
    file_path: str,
    max_size: int,
    slice_index: int,
) -> PixelDataResponse:
    """``GET /pixeldata``: validate, resolve, read in a worker."""
    if not PIXELDATA_SIZE_RANGE[0] <= max_size <= PIXELDATA_SIZE_RANGE[1]:
        raise InvalidRequestError(
            f"max_size must be between {PIXELDATA_SIZE_RANGE[0]} and {PIXELDATA_SIZE_RANGE[1]}, got {max_size}"
        )
    if slice_index < -1:
        raise InvalidRequestError(f"slice_index must be >= -1, got {slice_index}")
    path = await storage.resolve(file_path)
    result: dict[str, Any] = await executor.run(
        render.pixel_data, path, max_size, slice_index, settings.max_fits_array_elements
    )
    return PixelDataResponse(data_id=data_id, **result)


async def cube_info(storage: StorageProvider, executor: JobExecutor, data_id: str, file_path: str) -> CubeInfoResponse:
    """``GET /cubeinfo``: headers only, still off the event loop."""
    path = await storage.resolve(file_path)
    result: dict[str, Any] = await executor.run(render.cube_info, path)
    return CubeInfoResponse(data_id=data_id, **result)
