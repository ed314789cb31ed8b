"""Coverage: how far each pixel near an object's outline has gone from the background towards the object.

0 = background, 1 = object colour, in between = the anti-aliased or blurred rim. The edge measures
(`edges.py`) and the outline measure (`outline.py`) work from it, so colour and background drop out of both,
and its 0.5 level is the outline to sub-pixel accuracy.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from selfcascade.shapes.background import fit_plane, plane_image

# Edges are looked at within this many pixels of the object's outline: 2 training pixels (an upscaled
# edge is up to ~1 training pixel wide) plus a few pixels for a true render's 1-px rim and the probe.
EDGE_ZONE_TRAINING_PIXELS = 2
TRAINING_SIDE = 64
# A sampled step edge that happens to sit on a pixel border has no blended pixels at all, one half-way
# has a 1-px ramp: the "width" of a true render would swing 0..1 px with sub-pixel position. Seen through
# a small Gaussian probe it is a smooth profile whose width varies by only ~+-8%, at the cost of
# compressing the scale a little (sigma-2 blur reads ~0.4 instead of ~0.25 sharpness).
PROBE_SIGMA = 0.8


def zone_width(side: int) -> float:
    """Width (px) of the band around an outline where edges are looked at, in an image `side` px wide."""
    return EDGE_ZONE_TRAINING_PIXELS * side / TRAINING_SIDE + 4


def outline_distance(mask: np.ndarray) -> np.ndarray:
    """Distance (px) of every pixel from the mask's outline, on either side."""
    return np.where(mask, ndimage.distance_transform_edt(mask), ndimage.distance_transform_edt(~mask))


def coverage(image: Image.Image | np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Blend amount (0 = background, 1 = object colour) around boolean `mask`, and the crop it covers.

    Only a band around the outline is measured; elsewhere the mask itself is returned, so a cloud or
    noise far from the object does not enter the edge measures. The background is the plane fitted to
    the crop outside the band, the object colour the median inside it.
    """
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float32)
    mask = mask.astype(bool)
    band = zone_width(min(mask.shape))
    where = crop_around(mask, 2 * band + 3 * PROBE_SIGMA + 4)  # beyond the band: background to fit the plane to
    pixels, mask = pixels[where], mask[where]
    zone = outline_distance(mask) <= band
    background = plane_image(fit_plane(pixels, ~mask & ~zone), *mask.shape)
    core = mask & ~zone if (mask & ~zone).any() else mask
    colour = np.median(pixels[core], axis=0)
    direction = colour[None, None, :] - background
    amount = ((pixels - background) * direction).sum(-1) / (direction**2).sum(-1).clip(min=1e-6)
    return np.where(zone, amount.clip(0, 1), mask.astype(np.float32)), where


def crop_around(mask: np.ndarray, pad: float) -> tuple[slice, slice]:
    """Bounding box of `mask` grown by `pad` pixels, clipped to the image."""
    rows, cols = np.nonzero(mask)
    pad = int(np.ceil(pad))
    return (
        slice(max(rows.min() - pad, 0), min(rows.max() + pad + 1, mask.shape[0])),
        slice(max(cols.min() - pad, 0), min(cols.max() + pad + 1, mask.shape[1])),
    )
