"""The shapes world's background as the judge and the edge measures model it: a linear gradient per channel.

The renderer draws every background as a plane (a base colour plus a mild linear ramp, clipped to 0..255),
so a plane fitted to the pixels away from the object explains a clean background exactly; what it does not
explain is a stray region, grain or a halo.
"""

from __future__ import annotations

import numpy as np

PLANE_SAMPLES = 20000  # pixels a background plane is fitted to, at most


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in 0..1, so a plane fitted at one resolution applies at any other."""
    return np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij")


def plane_image(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """The fitted background (height x width x 3), clipped to 0..255 as the renderer clips its gradient."""
    yy, xx = _grid(height, width)
    values = plane[:, 0] + plane[:, 1] * xx[..., None] + plane[:, 2] * yy[..., None]
    return np.clip(values, 0, 255)


def fit_plane(pixels: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Least-squares plane per channel over `usable` pixels (3 x 3 coefficients, see Segmentation.plane).

    Saturated values (0 or 255) are left out: the renderer clips a white background's gradient at 255,
    and a plane fitted through the clipped part would be bent away from the true one.
    """
    yy, xx = _grid(*pixels.shape[:2])
    plane = np.zeros((3, 3))
    for channel in range(3):
        values = pixels[..., channel]
        keep = usable & (values > 0.5) & (values < 254.5)
        if keep.sum() < 3:  # all saturated: a flat plane at the mean is the best guess
            plane[channel, 0] = values[usable].mean() if usable.any() else values.mean()
            continue
        chosen = np.flatnonzero(keep)
        chosen = chosen[:: max(1, chosen.size // PLANE_SAMPLES)]  # a plane needs few points; keeps 512 px fast
        design = np.stack([np.ones(chosen.size), xx.flat[chosen], yy.flat[chosen]], axis=1)
        plane[channel] = np.linalg.lstsq(design, values.flat[chosen], rcond=None)[0]
    return plane
