"""The pure colour core of the composite: mixing, luminance, normalisation, letterbox, auto-stretch."""

from __future__ import annotations

import numpy as np

from app.processing.compositing import (
    ChannelStyle,
    auto_stretch_params,
    channel_display,
    fit_size,
    letterbox,
    mix_channels,
    neutralize_sky,
    srgb_decode,
    srgb_encode,
)
from app.processing.enhancement import StretchSettings


def test_global_maximum_keeps_colour_ratios() -> None:
    x = np.array([[1.0, 0.5]], dtype=np.float32)
    red = ChannelStyle(hue=0.0)
    orange = ChannelStyle(rgb=(1.0, 0.5, 0.0))
    rgb = mix_channels([x, x], [red, orange])
    linear = srgb_decode(rgb)
    # the red component saturates first; one factor for all components keeps G/R of the pixel
    assert rgb[0, 0, 0] == np.float32(1.0)
    ratio = linear[0, :, 1] / linear[0, :, 0]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-3)
    assert np.all(rgb[..., 2] == 0)


def test_luminance_channel_sets_brightness_keeps_hue() -> None:
    colour = np.full((2, 2), 0.2, dtype=np.float32)
    lum = np.array([[0.1, 0.4], [0.8, 0.0]], dtype=np.float32)
    style = ChannelStyle(hue=120.0)
    rgb = mix_channels([colour], [style], luminance=(lum, ChannelStyle(luminance=True, weight=1.0)))
    linear = srgb_decode(rgb)
    y = linear @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    np.testing.assert_allclose(y[lum > 0] / lum[lum > 0], y[0, 0] / lum[0, 0], rtol=1e-2)
    assert np.all(rgb[..., 0] == 0)
    assert np.all(rgb[..., 2] == 0)


def test_robust_limits_ignore_hot_pixels() -> None:
    rng = np.random.default_rng(0)
    data = (100.0 + rng.normal(0, 1, (128, 128))).astype(np.float32)
    data[64, 64] = 1e9
    shown, auto = channel_display(data, ChannelStyle(tones=StretchSettings("linear")))
    assert auto is None
    # robust limits: the hot pixel saturates, the sky is spread over the range rather than black
    assert shown[64, 64] == 1.0
    assert 0.2 < float(np.median(shown)) < 0.8


def test_auto_stretch_puts_the_sky_at_the_target_level() -> None:
    rng = np.random.default_rng(1)
    data = (10.0 + rng.normal(0, 2, (200, 200))).astype(np.float32)
    data[50:60, 50:60] += 500
    params = auto_stretch_params(data)
    assert abs(params.noise - 2.0) < 0.2
    assert abs(params.sky - 10.0) < 0.2
    shown, auto = channel_display(data, ChannelStyle(tones=StretchSettings("auto")))
    assert auto is not None
    assert abs(float(np.median(shown)) - 0.05) < 0.02


def test_letterbox_geometry_and_flip() -> None:
    rgb = np.zeros((50, 100, 3), dtype=np.float32)
    rgb[0, :, 0] = 1.0  # FITS row 0 (bottom of the sky) in red
    image, (top, left, h, w) = letterbox(rgb, 300, 300)
    assert image.shape == (300, 300, 3)
    assert (h, w) == fit_size((50, 100), 300, 300) == (150, 300)
    assert top == 75
    assert left == 0
    assert image[:top].max() == 0
    assert image[top + h :].max() == 0
    assert image[top + h - 1, :, 0].mean() > 200  # red ends at the bottom of the picture


def test_srgb_round_trip() -> None:
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(srgb_decode(srgb_encode(x)), x, atol=2e-4)


def test_auto_expose_brings_a_washed_out_median_into_the_band_keeping_colour() -> None:
    from app.processing.compositing import EXPOSURE_HIGH, EXPOSURE_LOW, auto_expose

    rng = np.random.default_rng(2)
    v = rng.uniform(0.3, 0.6, (64, 64)).astype(np.float32)
    v[0, 0] = 1.0
    planes = np.stack([v, 0.5 * v, 0.25 * v])  # 3 x H x W, as the composite keeps them
    covered = np.ones(v.shape, dtype=bool)
    covered[:, :4] = False  # uncovered pixels do not count
    out = auto_expose(planes.copy(), covered)
    assert abs(float(np.median(out.max(axis=0)[covered])) - EXPOSURE_HIGH) < 1e-3
    np.testing.assert_allclose(out[1] / out[0], 0.5, rtol=1e-4)  # colour ratios kept
    assert out[0, 0, 0] == np.float32(1.0)
    assert out.max() <= 1.0
    dark = auto_expose(planes * np.float32(1e-3), covered)
    assert abs(float(np.median(dark.max(axis=0)[covered])) - EXPOSURE_LOW) < 1e-3
    inside = np.full((3, 8, 8), 0.05, dtype=np.float32)
    np.testing.assert_array_equal(auto_expose(inside.copy(), np.ones((8, 8), dtype=bool)), inside)


def test_auto_expose_median_of_a_large_image_comes_from_a_grid_sample() -> None:
    from app.processing.compositing import EXPOSURE_HIGH, auto_expose

    rng = np.random.default_rng(5)
    v = rng.uniform(0.3, 0.6, (1500, 1500)).astype(np.float32)  # 2.25 M pixels: sampled, not sorted
    out = auto_expose(np.stack([v, v, v]), np.ones(v.shape, dtype=bool))
    assert abs(float(np.median(out[0])) - EXPOSURE_HIGH) < 2e-3


def test_srgb8_is_the_rounded_srgb_encoding() -> None:
    from app.processing.compositing import srgb8

    x = np.linspace(-0.1, 1.1, 5001, dtype=np.float32).reshape(1, 1, -1)
    exact = np.rint(255 * srgb_encode(np.clip(x, 0, 1)))
    assert srgb8(x).dtype == np.uint8
    assert np.abs(srgb8(x).astype(int) - exact).max() <= 1
    assert srgb8(np.zeros((2, 2), np.float32)).max() == 0
    assert srgb8(np.ones((3, 2, 2), np.float32)).min() == 255


def test_neutralize_sky_equalises_the_stretched_sky_levels() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(0.2, 0.01, (100, 100)).astype(np.float32)
    base[40:45, 40:45] = 0.9  # a star
    lifted = base + np.float32(0.15)  # the same sky, 0.15 brighter in display values
    covered = np.ones((100, 100), dtype=bool)
    covered[:, :10] = False  # not covered: left out of the sky estimate
    lifted[:, :10] = 0.0
    dark, bright = neutralize_sky([base.copy(), lifted.copy()], [covered, covered])
    assert abs(float(np.median(bright[covered])) - float(np.median(dark[covered]))) < 0.005
    np.testing.assert_array_equal(dark, base)  # the darkest sky is the target: that channel is unchanged
    assert float(bright[42, 42]) > 0.85  # white stays near white
    assert float(bright.min()) >= 0.0
    rgb = mix_channels([dark, bright], [ChannelStyle(rgb=(0.0, 1.0, 1.0)), ChannelStyle(hue=0.0)])
    sky = np.median(rgb[20:80, 50:90].reshape(-1, 3), axis=0)
    assert float(sky.max() - sky.min()) < 0.02  # grey: red equals cyan's green and blue


def test_colour_steps_on_threads_equal_one_thread() -> None:
    from app.processing.compositing import auto_expose, mix_linear, srgb8

    rng = np.random.default_rng(9)
    shape = (700, 600)  # two row bands and a bit
    data = [rng.gamma(2.0, 10.0, shape).astype(np.float32) for _ in range(3)]
    data[0][:50] = np.nan
    styles = [ChannelStyle(hue=0.0), ChannelStyle(rgb=(0.2, 0.9, 0.4), weight=0.7), ChannelStyle(luminance=True)]

    def run(threads: int) -> np.ndarray:
        shown = [channel_display(d, s, threads=threads)[0] for d, s in zip(data, styles, strict=True)]
        neutralize_sky(shown[:2], [np.isfinite(d) for d in data[:2]], threads=threads)
        planes = mix_linear(shown[:2], styles[:2], luminance=(shown[2], styles[2]), threads=threads)
        auto_expose(planes, np.isfinite(data[0]), threads=threads)
        return srgb8(planes, threads=threads)

    one = run(1)
    np.testing.assert_array_equal(one, run(2))
    np.testing.assert_array_equal(one, run(3))
    assert one.shape == (3, *shape)
    assert one.max() == 255
