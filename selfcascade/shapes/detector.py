"""Checks a generated image against its shapes-world prompt: the weight-free "correct composition" measure.

Every pixel is given to its nearest palette colour (shape colours and backgrounds). The prompt's colour is
then cut into connected blobs: a correct image has exactly one significant blob, of the right shape (told
by how much of its bounding box it fills: square ~1, circle ~pi/4, triangle ~1/2), size and background.
Direct sampling above the training size fails here by drawing several copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from .world import BACKGROUNDS, COLOURS, PromptSpec

_PALETTE_NAMES = list(COLOURS) + [f"bg:{name}" for name in BACKGROUNDS]
_PALETTE = np.array(list(COLOURS.values()) + list(BACKGROUNDS.values()), dtype=np.float32)
MAX_COLOUR_DISTANCE = 90.0  # farther than this from every palette entry: "no colour"
MIN_BLOB_FRACTION = 0.002  # of the image area: smaller blobs are specks, not objects
SMALL_LARGE_BOUNDARY = 0.39  # bounding-box side / image side, between the two SIZE_RANGES


@dataclass
class Verdict:
    correct: bool
    blobs: int
    shape: str | None = None
    extent: float | None = None
    background: str | None = None
    reasons: list[str] = field(default_factory=list)


def _palette_labels(pixels: np.ndarray) -> np.ndarray:
    distances = np.linalg.norm(pixels[:, :, None, :] - _PALETTE[None, None], axis=-1)
    labels = distances.argmin(-1)
    labels[distances.min(-1) > MAX_COLOUR_DISTANCE] = -1
    return labels


def classify_shape(blob: np.ndarray) -> tuple[str | None, float]:
    """Shape of a boolean blob mask from its bounding-box fill ratio; also returns its extent in pixels."""
    rows, cols = np.nonzero(blob)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    fill = blob.sum() / float(height * width)
    if not 0.7 <= height / width <= 1.43:
        return None, float(max(height, width))
    if fill > 0.88:
        return "square", float(max(height, width))
    if fill > 0.66:
        return "circle", float(max(height, width))
    if 0.35 < fill < 0.64:
        return "triangle", float(max(height, width))
    return None, float(max(height, width))


def check(image: Image.Image, spec: PromptSpec) -> Verdict:
    """Does `image` show exactly what `spec` asks for? (colour is required; other attributes if given)"""
    if spec.colour is None:
        raise ValueError("the detector needs a prompt that names a colour")
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    side = min(pixels.shape[:2])
    labels = _palette_labels(pixels)
    target = labels == _PALETTE_NAMES.index(spec.colour)
    components, count = ndimage.label(target)
    sizes = ndimage.sum(target, components, index=range(1, count + 1)) if count else np.array([])
    min_area = MIN_BLOB_FRACTION * pixels.shape[0] * pixels.shape[1]
    significant = [index + 1 for index, area in enumerate(sizes) if area >= min_area]
    verdict = Verdict(correct=False, blobs=len(significant))
    if len(significant) != 1:
        verdict.reasons.append(f"{len(significant)} {spec.colour} objects")
        return verdict
    blob = ndimage.binary_fill_holes(components == significant[0])
    verdict.shape, extent_px = classify_shape(blob)
    verdict.extent = extent_px / side
    if spec.shape and verdict.shape != spec.shape:
        verdict.reasons.append(f"shape looks like {verdict.shape}, not {spec.shape}")
    if spec.size_word:
        size_word = "small" if verdict.extent < SMALL_LARGE_BOUNDARY else "large"
        if size_word != spec.size_word:
            verdict.reasons.append(f"object is {size_word}")
    around = ndimage.binary_dilation(blob, iterations=max(2, side // 32))
    background_labels = labels[~around]
    background_labels = background_labels[background_labels >= len(COLOURS)]
    if background_labels.size:
        verdict.background = _PALETTE_NAMES[np.bincount(background_labels).argmax()][3:]
    if spec.background and verdict.background != spec.background:
        verdict.reasons.append(f"background is {verdict.background}")
    verdict.correct = not verdict.reasons
    return verdict
