"""Weight-free measures of how an image's object edge and background look, for the benchmark tables.

* `edge_sharpness`: the object's edge width relative to a true render's at the same size (1.0 = as sharp,
  0.5 = twice as blurry).
* `edge_roughness`: how jagged the object's outline is (mean distance to a smoothed outline / extent).
* `background_grain`: the background's noise after removing its linear gradient, in 0..255 units.

All work from a "coverage" field: per pixel, how far its colour has gone from the local background towards
the object's colour (0 = background, 1 = object), so colour and background drop out of every measure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy import ndimage

from selfcascade.shapes.background import fit_plane, plane_image
from selfcascade.shapes.coverage import PROBE_SIGMA, coverage, crop_around, zone_width
from selfcascade.shapes.detector import classify_shape, segment
from selfcascade.shapes.world import BACKGROUNDS, PromptSpec, Scene, render, shape_mask

# For a Gaussian edge, sum of t(1 - t) across it = sigma / sqrt(pi) and its 10%-90% rise = 2.563 sigma,
# so this factor turns "blend mass per unit of outline" into a 10%-90% width in pixels.
TEN_NINETY_PER_BLEND = 2.563 * np.sqrt(np.pi)
ROUGHNESS_WORK_EXTENT = 128  # the outline is resampled so the object spans this many pixels
ROUGHNESS_SIGMA = 0.05  # smoothing, as a fraction of the object's extent: finer wiggles are roughness
# True renders score 0.002-0.005 at 64-512 px (the smoothing still rounds corners and shrinks curves a
# little); an outline with a staircase of 1/32 of the side scores >= 0.008. Benchmarks may flag above this.
TRUE_RENDER_ROUGHNESS = 0.006
REFERENCE_OFFSETS = 4  # true renders (at different sub-pixel positions) averaged for the reference width


@dataclass
class EdgeReport:
    sharpness: float | None  # reference edge width / measured; None without a single object
    roughness: float | None  # outline jaggedness / extent; None without a single object
    grain: float  # background noise std after removing the gradient, 0..255 units


def width_of_coverage(amount: np.ndarray) -> float:
    """Mean 10%-90% transition width (px) of a coverage field's edge, via the co-area formula: the blend
    mass sum t(1-t) divided by the outline length sum |grad t|, scaled to a Gaussian edge's 10-90 rise."""
    smooth = ndimage.gaussian_filter(amount.astype(np.float64), PROBE_SIGMA)
    gradient_y, gradient_x = np.gradient(smooth)
    length = np.hypot(gradient_x, gradient_y).sum()
    return float(TEN_NINETY_PER_BLEND * (smooth * (1 - smooth)).sum() / max(length, 1e-9))


def edge_width(image: Image.Image | np.ndarray, mask: np.ndarray) -> float:
    """Mean 10%-90% width (px, seen through the PROBE_SIGMA probe) of the edge around boolean `mask`."""
    return width_of_coverage(coverage(image, mask)[0])


@lru_cache(maxsize=256)
def reference_width(shape: str, colour: str, background: str, size: int, extent: float) -> float:
    """Edge width of true renders of this object at `size` px, averaged over sub-pixel positions."""
    widths = []
    for offset in range(REFERENCE_OFFSETS):
        centre = 0.5 + (offset / REFERENCE_OFFSETS) / size  # step the outline across one pixel
        scene = Scene(shape, colour, background, "small", extent, centre, centre, 0.0, 0.0)
        widths.append(edge_width(render(scene, size), shape_mask(scene, size) >= 0.5))
    return float(np.mean(widths))


def _sharpness(pixels: np.ndarray, mask: np.ndarray, spec: PromptSpec, background: str | None,
               truth_size: int | None) -> float:
    side = min(mask.shape)
    shape, extent_px = classify_shape(mask)
    # Reference extents are rounded so the cache stays small: the width barely depends on the extent.
    extent = float(np.clip(round(extent_px / side * 10) / 10, 0.2, 0.6))
    reference = reference_width(spec.shape or shape or "circle", spec.colour,
                                background or next(iter(BACKGROUNDS)), truth_size or side, extent)
    return reference / max(edge_width(pixels, mask), 1e-6)


def edge_sharpness(image: Image.Image, spec: PromptSpec, truth_size: int | None = None) -> float | None:
    """Reference (true render at `truth_size`, default the image's side) edge width / measured width.

    1.0 = as sharp as a true render, 0.5 = twice as blurry; None when there is no single object.
    """
    segmentation = segment(image, spec)
    if segmentation.mask is None:
        return None
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    return _sharpness(pixels, segmentation.mask, spec, segmentation.background, truth_size)


def edge_roughness(mask: np.ndarray) -> float:
    """Mean distance between the outline and a smoothed outline, divided by the object's extent.

    `mask` is boolean or a 0..1 coverage (whose 0.5 level is a sub-pixel outline, so an anti-aliased
    64-px object is not charged for its pixel staircase). The outline is resampled to a fixed extent and
    smoothed with a sigma that is a fixed fraction of the extent, so the score does not depend on image or
    object size. The mean distance is the area between the two outlines over the outline's length.
    """
    mask = mask.astype(np.float32)
    inside = mask >= 0.5
    if not inside.any():
        raise ValueError("empty mask")
    extent = max(np.ptp(np.nonzero(inside)[0]), np.ptp(np.nonzero(inside)[1])) + 1
    crop = mask[crop_around(inside, 0.3 * extent + 2)]
    crop = np.pad(crop, int(0.3 * extent) + 2)  # room for the smoothing even at the image border
    outline = ndimage.zoom(crop, ROUGHNESS_WORK_EXTENT / extent, order=1) >= 0.5
    smooth = ndimage.gaussian_filter(outline.astype(np.float32), ROUGHNESS_SIGMA * ROUGHNESS_WORK_EXTENT)
    gradient_y, gradient_x = np.gradient(smooth)
    length = np.hypot(gradient_x, gradient_y).sum()  # co-area: the smoothed outline's length
    between = (outline != (smooth >= 0.5)).sum()
    return float(between / max(length, 1e-9) / ROUGHNESS_WORK_EXTENT)


def background_grain(image: Image.Image | np.ndarray, mask: np.ndarray | None = None) -> float:
    """Std (0..255) of the background away from `mask`, after removing the best-fit plane per channel."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float32)
    away = np.ones(pixels.shape[:2], dtype=bool)
    if mask is not None and mask.any():
        away = ndimage.distance_transform_edt(~mask.astype(bool)) > zone_width(min(mask.shape)) + 2
    residual = (pixels - plane_image(fit_plane(pixels, away), *away.shape))[away]
    return float(np.sqrt(residual.var(axis=0).mean()))


def measure(image: Image.Image, spec: PromptSpec, truth_size: int | None = None) -> EdgeReport:
    """Sharpness, roughness and grain of `image`, using the judge's segmentation to find the object."""
    segmentation = segment(image, spec)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    mask = segmentation.mask
    if mask is None:
        blobs = np.any(segmentation.blobs, axis=0) if segmentation.blobs else None
        return EdgeReport(None, None, background_grain(pixels, blobs))
    return EdgeReport(
        sharpness=_sharpness(pixels, mask, spec, segmentation.background, truth_size),
        roughness=edge_roughness(coverage(pixels, mask)[0]),
        grain=background_grain(pixels, mask),
    )
