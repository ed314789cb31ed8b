"""Checks a generated image against its shapes-world prompt: the weight-free "correct composition" measure.

Every pixel is given to its nearest palette colour (shape colours and backgrounds). The prompt's colour is
then cut into connected blobs: a correct image has exactly one significant blob, of the right shape (told
by how much of its bounding box it fills: square ~1, circle ~pi/4, triangle ~1/2, and then how closely it
follows the ideal shape fitted to its outline: the area off it, how far its outline strays in pixels, and
how far the outline passes from the ideal's corners, so a lumpy circle or a blunt triangle fails), size and
background.
Direct sampling above the training size fails here by drawing several copies.

The judge is strict: besides the object, every pixel must be explained either by the background (a fitted
linear gradient, as the renderer draws it) or, near the object, by a blend of object and background colour
(its anti-aliased or blurred rim). Anything else -- another shape colour, a purple haze, a grey halo, a dark
smudge -- that covers `STRAY_FRACTION` of the image or more is a "stray region".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from selfcascade.shapes.background import fit_plane, plane_image
from selfcascade.shapes.outline import OutlineFit, fit_outline, ideal_mask
from selfcascade.shapes.world import BACKGROUNDS, COLOURS, PromptSpec

_PALETTE_NAMES = list(COLOURS) + [f"bg:{name}" for name in BACKGROUNDS]
_PALETTE = np.array(list(COLOURS.values()) + list(BACKGROUNDS.values()), dtype=np.float32)
MAX_COLOUR_DISTANCE = 90.0  # farther than this from every palette entry: "no colour"
MIN_BLOB_FRACTION = 0.002  # of the image area: smaller blobs are specks, not objects
SMALL_LARGE_BOUNDARY = 0.39  # bounding-box side / image side, between the two SIZE_RANGES
FAILURE_KINDS = ("missing", "copies", "shape", "size", "background", "stray region", "blemish")
STRAY_FRACTION = 0.01  # a region of another colour this large (of the image area) fails the image
# RGB distance from what background/rim predict beyond which a pixel is "another colour". Palette shape
# colours sit >= 139 from every background, so 30 catches a cloud wherever it is >~20% opaque, while the
# renderer's own deviations (8-bit rounding, clipping of the gradient) stay below 2.
STRAY_COLOUR_DISTANCE = 30.0
# Stray regions are looked for at <= 128 px (box-averaged): it costs little at 512 px, averages pixel noise
# away, and makes "1% of the image" mean the same thing at every size. Box averaging keeps a rim a blend.
ANALYSIS_SIDE = 128
# The rim zone, in pixels of the 64-px training resolution: a true render's anti-aliased rim is ~1 px wide
# at any size, an upscaled one up to ~1 training pixel; 2 training pixels covers both with margin. Inside
# it only blends of object and background colours are excused, so a grey halo there still counts.
RIM_TRAINING_PIXELS = 2
TRAINING_SIDE = 64
# Shape fidelity: the object is compared with the ideal shape fitted to its outline (outline.fit_outline:
# centre and size by robust least squares), at <= 256 px. The area where they differ, beyond half a pixel
# along the ideal outline (rasterisation; a whole pixel at 64 px, where small shapes are a dozen pixels wide),
# per ideal area, must stay below this. Until 2026-11-29 the ideal was drawn in the object's bounding box,
# which made one blunt tip or a base corner reaching a pixel too far misplace the whole ideal: it failed 14 of
# 14 triangles of a 256 px sweep at 4-17%, among them triangles that look right (the fitted ideal: <= 0.8%).
# True renders score <= 0.015; lumpy, flattened circles and wavy squares 0.014-0.067.
SHAPE_DEVIATION_LIMIT = 0.03
SHAPE_ANALYSIS_SIDE = 256
# Blemishes: on the object and its rim, pixels that are neither the object's colour, nor the background, nor
# a blend of the two (dark blotches inside a square, orange corners on a yellow triangle, a purple fringe on a
# red circle's rim). Each is far below 1% of the image, so the stray-region rule passes them; counted per
# object area they are not small. True renders score 0 at every size (160 scenes); the flaws above, checked by
# eye on 24 images at 256 px, score 2.7-32%; clean-looking generated objects <= 1.6%.
BLEMISH_FRACTION = 0.02
# Outline: 95% of the object's sub-pixel outline within this many pixels of the best-fitting ideal shape
# (outline.py). The area measure above under-weights a wavy outline on a large object: at 512 px it passed
# circles with flat runs 5 px deep. True renders measure <= 0.17 px at 64-512 px, the model's own 64-px
# samples <= 0.9 px; at 256 px, circles checked by eye as round measured 0.9-1.2 px, lumpy ones 1.7-3.1 px.
OUTLINE_LIMIT_PX = 1.5
# Corners: the outline must pass within this fraction of the fitted half side (or CORNER_MIN_PX for small
# shapes) of every corner of the fitted square or triangle. The area and outline
# measures both pass a blunt corner: it is a small area, and few outline points. Relative, because a corner
# rounded 5 px looks blunt on a 60 px triangle and sharp on a 150 px one. True renders: <= 0.115 of the half
# side at 64 px (anti-aliasing of a 14 px triangle), ~0.5 px at 256-512. Calibrated by eye on the 14
# triangles of a 256 px sweep: those that look blunt 0.13-0.16, those that look sharp 0.055-0.10.
# CORNER_MIN_PX: at 64 px the embedded VAE's own round trip of true renders passes up to 2.1 px from a corner
# (benchmarks/geometry_ceiling.py), and so do the model's samples (<= 2.4 px); a couple of pixels at a 64 px
# corner is anti-aliasing, not a blunt shape.
CORNER_LIMIT_FRACTION = 0.12
CORNER_MIN_PX = 2.5


@dataclass
class Verdict:
    correct: bool
    blobs: int
    shape: str | None = None
    extent: float | None = None
    background: str | None = None
    reasons: list[str] = field(default_factory=list)  # human-readable, one per failure
    failures: list[str] = field(default_factory=list)  # kinds from FAILURE_KINDS, one per failing criterion
    stray: float = 0.0  # area fraction of the largest stray region (0 when none)
    deviation: float | None = None  # shape deviation from the ideal shape (see SHAPE_DEVIATION_LIMIT)
    outline: float | None = None  # px of the outline off the fitted ideal shape (see OUTLINE_LIMIT_PX)
    corner: float | None = None  # px from the fitted ideal's bluntest corner to the outline (CORNER_LIMIT_*)
    blemish: float = 0.0  # off-colour area on the object per object area (see BLEMISH_FRACTION)

    def fail(self, kind: str, reason: str) -> None:
        """Record a failing criterion (once per kind) with its human-readable reason."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}")
        if kind not in self.failures:
            self.failures.append(kind)
        self.reasons.append(reason)


@dataclass
class Segmentation:
    """What the judge sees in an image: prompt-colour blobs, object colour and the background plane."""

    colour: str  # the prompt's colour
    blobs: list[np.ndarray]  # filled boolean masks of the significant prompt-colour blobs, largest first
    object_colour: np.ndarray | None  # median RGB of the prompt-colour pixels
    plane: np.ndarray  # 3 x 3 coefficients: channel value = c0 + c1 * x + c2 * y (x, y in 0..1)
    background: str | None  # palette background name nearest the plane's centre colour, if any

    @property
    def mask(self) -> np.ndarray | None:
        """The object's filled mask when there is exactly one significant blob."""
        return self.blobs[0] if len(self.blobs) == 1 else None


def palette_labels(pixels: np.ndarray) -> np.ndarray:
    """Index of the nearest palette entry per pixel; -1 when none is within MAX_COLOUR_DISTANCE."""
    # |p - c|^2 = |p|^2 - 2 p.c + |c|^2 as one matrix product: ~10x faster than broadcasting at 512 px.
    squared = (pixels**2).sum(-1)[..., None] - 2 * pixels @ _PALETTE.T + (_PALETTE**2).sum(-1)
    labels = squared.argmin(-1)
    nearest = np.take_along_axis(squared, labels[..., None], axis=-1)[..., 0]
    labels[nearest > MAX_COLOUR_DISTANCE**2] = -1
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


def shape_deviation(blob: np.ndarray, shape: str, fit: OutlineFit) -> float:
    """How far a blob is from the ideal `shape` fitted to its outline (outline.fit_outline): (area where they
    differ - half a pixel along the ideal outline) / ideal area, at <= SHAPE_ANALYSIS_SIDE px. ~0 or below
    for a true render; lumps, dents and blunt corners raise it."""
    factor = max(1, min(blob.shape) // SHAPE_ANALYSIS_SIDE)
    if factor > 1:
        height, width = (blob.shape[0] // factor) * factor, (blob.shape[1] // factor) * factor
        blob = blob[:height, :width].reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3))
        blob = blob >= 0.5
    ideal = ideal_mask(fit, shape, *blob.shape, factor)
    outline = ideal.sum() - ndimage.binary_erosion(ideal).sum()
    allowance = max(0.5, TRAINING_SIDE / min(blob.shape))  # pixels of rasterisation error along the outline
    return float(((ideal ^ blob).sum() - allowance * outline) / max(ideal.sum(), 1))


def _fit_background(pixels: np.ndarray, labels: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Plane of the background: start from the most common label outside the objects, then refit on every
    outside pixel the plane explains (a graded grey background's corners can be nearest to beige)."""
    if not outside.any():
        outside = np.ones_like(outside)
    majority = np.bincount(labels[outside] + 1).argmax() - 1
    usable = outside & (labels == majority)
    plane = fit_plane(pixels, usable)
    for _ in range(2):
        residual = np.linalg.norm(pixels - plane_image(plane, *pixels.shape[:2]), axis=-1)
        usable = outside & (residual < STRAY_COLOUR_DISTANCE)
        if usable.sum() < 0.05 * outside.size:
            break
        plane = fit_plane(pixels, usable)
    return plane


def _background_name(plane: np.ndarray) -> str | None:
    """Nearest palette entry to the plane's centre colour, when that is a background colour."""
    centre = plane[:, 0] + 0.5 * plane[:, 1] + 0.5 * plane[:, 2]
    index = int(palette_labels(centre[None, None, :].astype(np.float32))[0, 0])
    return _PALETTE_NAMES[index][3:] if index >= len(COLOURS) else None


def _downsample(array: np.ndarray, factor: int) -> np.ndarray:
    """Box-average by an integer factor (the image is cropped to a multiple of it)."""
    if factor == 1:
        return array.astype(np.float32)
    height, width = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    blocks = array[:height, :width].reshape(height // factor, factor, width // factor, factor, *array.shape[2:])
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def _analysis(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    """The image box-averaged to <= ANALYSIS_SIDE, and the factor used."""
    factor = max(1, min(pixels.shape[:2]) // ANALYSIS_SIDE)
    return _downsample(pixels, factor), factor


def _rim_zone(blobs: list[np.ndarray], factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (at analysis resolution) within RIM_TRAINING_PIXELS of any blob, blobs included."""
    if not blobs:
        return np.zeros(shape, dtype=bool)
    touched = _downsample(np.any(blobs, axis=0), factor) > 0
    width = RIM_TRAINING_PIXELS * min(shape) / TRAINING_SIDE
    return ndimage.distance_transform_edt(~touched) <= width


def _segment(pixels: np.ndarray, colour: str) -> tuple[Segmentation, np.ndarray, np.ndarray]:
    """Segmentation plus the analysis-resolution pixels and rim zone, which the stray search reuses."""
    labels = palette_labels(pixels)
    target = labels == _PALETTE_NAMES.index(colour)
    components, count = ndimage.label(target)
    sizes = ndimage.sum(target, components, index=range(1, count + 1)) if count else np.array([])
    min_area = MIN_BLOB_FRACTION * target.size
    order = [index + 1 for index in np.argsort(sizes)[::-1] if sizes[index] >= min_area]
    blobs = [ndimage.binary_fill_holes(components == index) for index in order]
    small, factor = _analysis(pixels)
    zone = _rim_zone(blobs, factor, small.shape[:2])
    plane = _fit_background(small, palette_labels(small), ~zone)
    object_colour = np.median(pixels[target], axis=0) if target.any() else None
    segmentation = Segmentation(colour, blobs, object_colour, plane, _background_name(plane))
    return segmentation, small, zone


def segment(image: Image.Image, spec: PromptSpec) -> Segmentation:
    """Find the prompt-colour blobs and the background of `image`."""
    if spec.colour is None:
        raise ValueError("the detector needs a prompt that names a colour")
    return _segment(np.asarray(image.convert("RGB"), dtype=np.float32), spec.colour)[0]


def object_mask(image: Image.Image, spec: PromptSpec) -> np.ndarray | None:
    """Filled boolean mask of the single significant prompt-colour blob; None when there are 0 or 2+."""
    return segment(image, spec).mask


def blend_residual(pixels: np.ndarray, background: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """RGB distance of each pixel from the nearest blend of its local background and the object colour."""
    direction = colour[None, None, :] - background
    weight = (direction**2).sum(-1).clip(min=1e-6)
    amount = (((pixels - background) * direction).sum(-1) / weight).clip(0, 1)
    return np.linalg.norm(pixels - background - amount[..., None] * direction, axis=-1)


def _describe(colour: np.ndarray) -> str:
    """Palette name of a colour for the reasons, or its RGB when it is off the palette."""
    index = int(palette_labels(colour[None, None, :].astype(np.float32))[0, 0])
    if index < 0:
        return "off-palette rgb({}, {}, {})".format(*np.round(colour).astype(int))
    return _PALETTE_NAMES[index].replace("bg:", "")


def stray_regions(small: np.ndarray, segmentation: Segmentation, zone: np.ndarray) -> list[tuple[float, str]]:
    """(area fraction, colour description) of each connected unexplained region, largest first."""
    background = plane_image(segmentation.plane, *small.shape[:2])
    deviation = np.linalg.norm(small - background, axis=-1)
    unexplained = deviation >= STRAY_COLOUR_DISTANCE
    if segmentation.object_colour is not None:
        # Prompt-colour pixels are never "another colour" (extra copies are their own failure), and in
        # the rim zone a blend of object and background is the object's edge, however wide.
        target = palette_labels(small) == _PALETTE_NAMES.index(segmentation.colour)
        rim = zone & (blend_residual(small, background, segmentation.object_colour) < STRAY_COLOUR_DISTANCE)
        unexplained &= ~(target | rim)
    components, count = ndimage.label(unexplained, structure=np.ones((3, 3)))
    regions = []
    for index, where in enumerate(ndimage.find_objects(components), start=1):
        region = components[where] == index
        # Named by its strongest pixel: a soft cloud's mean is mostly background and would mislead.
        strongest = np.where(region, deviation[where], -1).argmax()
        colour = small[where].reshape(-1, 3)[strongest]
        regions.append((region.sum() / unexplained.size, _describe(colour)))
    return sorted(regions, reverse=True)


def blemish_fraction(small: np.ndarray, segmentation: Segmentation, zone: np.ndarray) -> float:
    """Area of the object's off-colour pixels (see BLEMISH_FRACTION), per object area, at analysis size.

    The object's colour is its median (not the palette's), so a hue shift inside the object counts too."""
    if segmentation.mask is None:
        return 0.0
    background = plane_image(segmentation.plane, *small.shape[:2])
    off_background = np.linalg.norm(small - background, axis=-1) >= STRAY_COLOUR_DISTANCE
    off_blend = blend_residual(small, background, segmentation.object_colour) >= STRAY_COLOUR_DISTANCE
    factor = max(1, min(segmentation.mask.shape) // ANALYSIS_SIDE)  # as _analysis chose for `small`
    inside = _downsample(segmentation.mask, factor) > 0.5
    # Away from the rim a blend is no excuse: a dark patch inside a cyan square on black is a blend of the
    # two colours, but a true render has blends only along its ~1 px rim.
    core = ndimage.binary_erosion(inside, iterations=max(1, round(RIM_TRAINING_PIXELS * min(small.shape[:2])
                                                                  / TRAINING_SIDE)))
    off_object = np.linalg.norm(small - segmentation.object_colour, axis=-1) >= STRAY_COLOUR_DISTANCE
    blemished = (zone & off_background & off_blend) | (core & off_object)
    return float(blemished.sum() / max(inside.sum(), 1))


def _judge_object(verdict: Verdict, pixels: np.ndarray, blob: np.ndarray, spec: PromptSpec) -> None:
    """Shape and size criteria of the single object."""
    verdict.shape, extent_px = classify_shape(blob)
    verdict.extent = extent_px / min(blob.shape)
    if spec.shape and verdict.shape != spec.shape:
        verdict.fail("shape", f"shape looks like {verdict.shape}, not {spec.shape}")
    elif verdict.shape:
        fit = fit_outline(pixels, blob, verdict.shape)
        verdict.deviation = shape_deviation(blob, verdict.shape, fit)
        if verdict.deviation > SHAPE_DEVIATION_LIMIT:
            verdict.fail("shape", f"misshapen {verdict.shape}: {100 * verdict.deviation:.0f}% of its area off "
                                  "the ideal outline")
        verdict.outline, verdict.corner = fit.error, fit.corner_cut
        corner_limit = max(CORNER_LIMIT_FRACTION * fit.half_side, CORNER_MIN_PX)
        if verdict.corner > corner_limit:
            verdict.fail("shape", f"blunt {verdict.shape} corner: the outline passes {verdict.corner:.1f} px from "
                                  f"it (limit {corner_limit:.1f} px)")
        if verdict.outline > OUTLINE_LIMIT_PX:
            verdict.fail("shape", f"wavy {verdict.shape} outline: {verdict.outline:.1f} px off the ideal shape "
                                  f"(limit {OUTLINE_LIMIT_PX} px)")
    if spec.size_word:
        size_word = "small" if verdict.extent < SMALL_LARGE_BOUNDARY else "large"
        if size_word != spec.size_word:
            verdict.fail("size", f"object is {size_word}")


def check(image: Image.Image, spec: PromptSpec) -> Verdict:
    """Does `image` show exactly what `spec` asks for? (colour is required; other attributes if given)

    Every criterion that can be judged is, so `failures` lists all that fail (shape and size only when
    there is exactly one object).
    """
    if spec.colour is None:
        raise ValueError("the detector needs a prompt that names a colour")
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    segmentation, small, zone = _segment(pixels, spec.colour)
    verdict = Verdict(correct=False, blobs=len(segmentation.blobs), background=segmentation.background)
    if not segmentation.blobs:
        verdict.fail("missing", f"0 {spec.colour} objects")
    elif len(segmentation.blobs) > 1:
        verdict.fail("copies", f"{len(segmentation.blobs)} {spec.colour} objects")
    else:
        _judge_object(verdict, pixels, segmentation.blobs[0], spec)
    if verdict.background is None:
        verdict.fail("background", "background is not a background colour")
    elif spec.background and verdict.background != spec.background:
        verdict.fail("background", f"background is {verdict.background}")
    verdict.blemish = blemish_fraction(small, segmentation, zone)
    if verdict.blemish >= BLEMISH_FRACTION:
        verdict.fail("blemish", f"off-colour patches on the object covering {100 * verdict.blemish:.0f}% of it")
    regions = stray_regions(small, segmentation, zone)
    verdict.stray = regions[0][0] if regions else 0.0
    for fraction, colour in regions:
        if fraction >= STRAY_FRACTION:
            verdict.fail("stray region", f"stray {colour} region covering {100 * fraction:.1f}% of the image")
    verdict.correct = not verdict.failures
    return verdict
