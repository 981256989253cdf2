"""Composite service: validate the request cheaply, then run the composite job with the storage keys.

Every check that needs no pixels happens here, before anything heavy: at most one luminance
channel, at least one colour channel, exactly one of hue/rgb/luminance per channel, black point
below white point. Channels are keyed by their index, so duplicate labels cannot collide.
"""

from __future__ import annotations

from app.composite.jobs import ChannelJob, CompositeJob, CompositeOutput, render_composite
from app.composite.schemas import NChannelCompositeRequest, NChannelConfig
from app.core.exceptions import UnprocessableError
from app.core.executor import JobExecutor
from app.core.settings import MIB, Settings
from app.processing.compositing import AUTO_STRETCH, ChannelStyle
from app.processing.enhancement import STRETCH_NAMES
from app.schemas import FALLBACK_STRETCH, core_stretch, resolve_stretch

#: Stretch names accepted for channels: the shared stretches plus the automatic one.
CHANNEL_STRETCHES = (*STRETCH_NAMES, AUTO_STRETCH)


def channel_name(index: int, channel: NChannelConfig) -> str:
    """Display name of a channel: its label, or ``ch<index>``."""
    return channel.label if channel.label else f"ch{index}"


def _color_kind(channel: NChannelConfig) -> list[str]:
    kinds = []
    if channel.color.hue is not None:
        kinds.append("hue")
    if channel.color.rgb is not None:
        kinds.append("rgb")
    if channel.color.luminance:
        kinds.append("luminance")
    return kinds


def validate_request(request: NChannelCompositeRequest) -> None:
    """Raise :class:`UnprocessableError` (422, string detail) for inconsistent channels; reads no file."""
    n_luminance = 0
    n_colour = 0
    for index, channel in enumerate(request.channels):
        name = channel_name(index, channel)
        kinds = _color_kind(channel)
        if len(kinds) != 1:
            raise UnprocessableError(
                f"Channel {index} ({name}): exactly one of color.hue, color.rgb or color.luminance=true "
                f"is required (got {', '.join(kinds) if kinds else 'none'})"
            )
        if kinds[0] == "luminance":
            n_luminance += 1
        else:
            n_colour += 1
        if not channel.black_point < channel.white_point:
            raise UnprocessableError(f"Channel {index} ({name}): black_point must be less than white_point")
    if n_luminance > 1:
        raise UnprocessableError("At most one luminance channel is allowed per composite")
    if n_colour == 0:
        raise UnprocessableError("At least one color channel (hue or rgb) is required")
    if request.overall is not None and not request.overall.black_point < request.overall.white_point:
        raise UnprocessableError("overall: black_point must be less than white_point")


def build_job(request: NChannelCompositeRequest, settings: Settings) -> CompositeJob:
    """Turn a validated request into a picklable job (it carries the storage keys)."""
    channels = []
    fallbacks = []
    for index, channel in enumerate(request.channels):
        name = channel_name(index, channel)
        stretch, fell_back = resolve_stretch(channel.stretch, on_unknown="fallback", allowed=CHANNEL_STRETCHES)
        if fell_back:
            fallbacks.append(f"{index}:{FALLBACK_STRETCH}")
        color = channel.color
        style = ChannelStyle(
            tones=core_stretch(channel, stretch),
            curve=channel.curve,
            weight=channel.weight,
            hue=color.hue,
            rgb=tuple(color.rgb) if color.rgb is not None else None,  # type: ignore[arg-type]
            luminance=color.luminance,
        )
        channels.append(ChannelJob(name=name, keys=tuple(channel.file_paths), style=style, hdu=channel.hdu_choice()))
    overall = None
    if request.overall is not None:
        overall = core_stretch(request.overall, request.overall.stretch)
    extra = (("X-Composite-Stretch-Fallback", ",".join(fallbacks)),) if fallbacks else ()
    return CompositeJob(
        channels=tuple(channels),
        overall=overall,
        background_neutralization=request.background_neutralization,
        output_format=request.output_format,
        quality=request.quality,
        width=request.width,
        height=request.height,
        max_reproject_pixels=settings.max_composite_reproject_pixels,
        max_input_pixels=settings.max_composite_input_pixels,
        memory_budget_bytes=settings.engine_job_memory_mb * MIB,
        cache_ttl_seconds=settings.composite_cache_ttl_seconds,
        cache_max_entries=settings.composite_cache_max_entries,
        cache_max_bytes=settings.composite_cache_max_bytes,
        cache_dir=str(settings.composite_cache_dir),
        extra_headers=extra,
        threads=settings.engine_job_threads,
    )


async def generate_composite(
    request: NChannelCompositeRequest, *, executor: JobExecutor, settings: Settings
) -> CompositeOutput:
    """Validate without reading a file, then run the job (which opens the keys) on the executor."""
    validate_request(request)
    return await executor.run(render_composite, build_job(request, settings))
