"""The strict shapes judge (detector.check) and the edge/background measures (edges.py).

True renders must pass at every size; soft clouds of another colour, extra copies, wrong or missing
backgrounds and objects must fail with the right failure kind. Scene counts shrink with size to keep the
whole file well under 30 s on two CPU cores.
"""

import random
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from selfcascade.shapes.detector import FAILURE_KINDS, check, object_mask
from selfcascade.shapes.edges import (
    TRUE_RENDER_ROUGHNESS,
    EdgeReport,
    background_grain,
    edge_roughness,
    edge_sharpness,
    edge_width,
    measure,
)
from selfcascade.shapes.world import COLOURS, PromptSpec, random_scene, render, shape_mask

SCENES_PER_SIZE = {64: 60, 128: 60, 256: 40, 512: 24}
PURPLE = (150, 60, 170)  # off the palette (nearest entry, magenta, is 89 away)


@lru_cache(maxsize=None)
def cases(size: int) -> list:
    """(scene, spec, render) triples; the spec always names colour and shape, sometimes size/background."""
    rng = random.Random(size)
    result = []
    for _ in range(SCENES_PER_SIZE[size]):
        scene = random_scene(rng)
        spec = PromptSpec(
            scene.shape,
            scene.colour,
            scene.size_word if rng.random() < 0.5 else None,
            scene.background if rng.random() < 0.5 else None,
        )
        result.append((scene, spec, render(scene, size)))
    return result


def soft_cloud(image: Image.Image, scene, fraction: float, colour) -> Image.Image:
    """`image` with a Gaussian-blurred disc of `colour` (area `fraction` of the image, blur sigma = half
    its radius) placed as far from the object as the image allows."""
    pixels = np.asarray(image, dtype=np.float32)
    side = pixels.shape[0]
    radius = np.sqrt(fraction / np.pi) * side
    places = np.linspace(1.2 * radius, side - 1.2 * radius, 12)
    centre = max(
        ((x, y) for x in places for y in places),
        key=lambda p: np.hypot(p[0] - scene.centre_x * side, p[1] - scene.centre_y * side),
    )
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    distance = np.hypot(xx - centre[0], yy - centre[1])
    near = distance <= 2.6 * radius  # blur only the cloud's neighbourhood: 10x faster at 512 px
    rows, cols = np.nonzero(near.any(1))[0], np.nonzero(near.any(0))[0]
    window = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    alpha = np.zeros((side, side, 1), dtype=np.float32)
    disc = (distance[window] <= radius).astype(np.float32)
    alpha[window] = ndimage.gaussian_filter(disc, radius / 2, truncate=3.0, mode="constant")[..., None]
    blended = pixels * (1 - alpha) + np.array(colour, dtype=np.float32) * alpha
    return Image.fromarray(np.round(blended).astype(np.uint8))


def other_colour(colour: str, index: int) -> tuple[int, int, int]:
    others = [name for name in COLOURS if name != colour]
    return COLOURS[others[index % len(others)]]


# --- the judge ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", sorted(SCENES_PER_SIZE))
def test_true_renders_pass(size):
    for scene, spec, image in cases(size):
        verdict = check(image, spec)
        assert verdict.correct, (scene, spec, verdict.reasons)
        assert verdict.failures == [] and verdict.blobs == 1 and verdict.shape == scene.shape
        assert verdict.background == scene.background
        assert verdict.stray == 0.0  # the anti-aliased rim and the gradient are fully explained


@pytest.mark.parametrize("size", sorted(SCENES_PER_SIZE))
def test_soft_clouds_of_another_colour_are_stray(size):
    for index, (scene, spec, image) in enumerate(cases(size)):
        for colour in (other_colour(scene.colour, index), PURPLE):
            verdict = check(soft_cloud(image, scene, 0.02, colour), spec)
            assert "stray region" in verdict.failures, (scene, colour, verdict.reasons)
            assert verdict.failures == ["stray region"]  # nothing else is wrong with these images


@pytest.mark.parametrize("size", sorted(SCENES_PER_SIZE))
def test_small_clouds_are_below_the_threshold(size):
    for index, (scene, spec, image) in enumerate(cases(size)):
        colour = PURPLE if index % 2 else other_colour(scene.colour, index)
        verdict = check(soft_cloud(image, scene, 0.003, colour), spec)
        assert verdict.correct, (scene, colour, verdict.reasons)
        assert 0.0 < verdict.stray < 0.01  # seen, but too small to fail


@pytest.mark.parametrize("size", [64, 256])
def test_two_copies(size):
    scene = random_scene(random.Random(2), PromptSpec("circle", "red", "small", "white"))
    first = replace(scene, centre_x=0.25, centre_y=0.3)
    second = replace(scene, centre_x=0.72, centre_y=0.7)
    coverage = shape_mask(second, size)[..., None]
    pixels = np.asarray(render(first, size), dtype=np.float32) * (1 - coverage)
    pixels += np.array(COLOURS["red"], dtype=np.float32) * coverage
    image = Image.fromarray(np.round(pixels).astype(np.uint8))
    verdict = check(image, PromptSpec("circle", "red"))
    assert verdict.failures == ["copies"] and verdict.blobs == 2
    assert object_mask(image, PromptSpec("circle", "red")) is None


def test_wrong_background_and_blank_image():
    scene, spec, image = cases(128)[0]
    wrong = next(name for name in ("white", "black") if name != scene.background)
    verdict = check(image, replace(spec, background=wrong))
    assert verdict.failures == ["background"] and verdict.reasons == [f"background is {scene.background}"]
    blank = render(replace(scene, extent=0.0), 128)
    assert check(blank, spec).failures == ["missing"]
    assert object_mask(blank, spec) is None


def test_every_failing_criterion_is_listed():
    scene, spec, image = cases(64)[1]
    wrong = next(name for name in ("white", "black") if name != scene.background)
    wrong_shape = next(name for name in ("circle", "square") if name != scene.shape)
    clouded = soft_cloud(image, scene, 0.02, PURPLE)
    verdict = check(clouded, PromptSpec(wrong_shape, scene.colour, background=wrong))
    assert verdict.failures == ["shape", "background", "stray region"]
    assert len(verdict.reasons) == 3 and set(verdict.failures) <= set(FAILURE_KINDS)
    # A wrong-colour object is both a missing object and a stray region.
    other = next(name for name in COLOURS if name != scene.colour)
    assert check(image, PromptSpec(scene.shape, other)).failures == ["missing", "stray region"]


def test_object_mask_matches_the_shape():
    for scene, spec, image in cases(256)[:6]:
        mask = object_mask(image, spec)
        truth = shape_mask(scene, 256) >= 0.5
        assert (mask & truth).sum() / (mask | truth).sum() > 0.97


# --- edges and background ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", sorted(SCENES_PER_SIZE))
def test_true_render_edge_scores(size):
    for scene, spec, image in cases(size)[:10]:
        report = measure(image, spec)
        assert isinstance(report, EdgeReport)
        assert 0.8 <= report.sharpness <= 1.25, (scene, report)
        assert report.roughness < TRUE_RENDER_ROUGHNESS, (scene, report)
        assert report.grain < 2, (scene, report)


def test_blur_lowers_sharpness():
    for scene, spec, image in cases(256)[:6]:
        pixels = ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), (2, 2, 0))
        blurred = Image.fromarray(np.round(pixels).astype(np.uint8))
        assert edge_sharpness(blurred, spec) < 0.6
        mask = object_mask(image, spec)
        assert edge_width(blurred, mask) > 2 * edge_width(image, mask)


def test_jagged_outline_is_rough():
    rng = random.Random(7)
    for shape in ("circle", "triangle", "circle", "triangle"):  # a square's outline has no staircase
        scene = random_scene(rng, PromptSpec(shape))
        spec = PromptSpec(scene.shape, scene.colour)
        jagged = render(scene, 32).resize((256, 256), Image.Resampling.NEAREST)
        smooth = measure(render(scene, 256), spec).roughness
        rough = measure(jagged, spec).roughness
        assert rough > TRUE_RENDER_ROUGHNESS and rough > 2 * smooth, (scene, smooth, rough)


def test_boolean_masks_work_too():
    scene, spec, image = cases(256)[2]
    assert edge_roughness(object_mask(image, spec)) < 2 * TRUE_RENDER_ROUGHNESS


def test_noise_raises_grain():
    noise = np.random.default_rng(0)
    for scene, spec, image in cases(256)[:4]:
        pixels = np.asarray(image, dtype=np.float32) + noise.normal(0, 8, (256, 256, 3))
        noisy = Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))
        assert measure(noisy, spec).grain > 5
        mask = object_mask(image, spec)
        assert background_grain(image, mask) < 2 < 5 < background_grain(noisy, mask)


def test_no_single_object_gives_no_edge_scores():
    scene, spec, image = cases(64)[0]
    blank = render(replace(scene, extent=0.0), 64)
    assert edge_sharpness(blank, spec) is None
    report = measure(blank, spec)
    assert report.sharpness is None and report.roughness is None and report.grain < 2


def _lumpy_circles(size: int) -> list[Image.Image]:
    """A red circle on white, made lumpy the ways the upper stages did: an octagon, a flattened bottom."""
    images = []
    centre, radius = size / 2, size * 0.3
    for kind in ("octagon", "flattened"):
        image = Image.new("RGB", (size, size), (255, 255, 255))
        draw = ImageDraw.Draw(image)
        if kind == "octagon":
            angles = np.arange(8) * np.pi / 4 + np.pi / 8
            draw.polygon([(centre + radius * np.cos(a), centre + radius * np.sin(a)) for a in angles],
                         fill=COLOURS["red"])
        else:
            draw.ellipse((centre - radius, centre - radius, centre + radius, centre + radius), fill=COLOURS["red"])
            draw.rectangle((0, centre + 0.7 * radius, size, size), fill=(255, 255, 255))
        images.append(image)
    return images


@pytest.mark.parametrize("size", [128, 256, 512])
def test_lumpy_circles_fail_on_shape(size):
    spec = PromptSpec(shape="circle", colour="red", background="white")
    lumpy = _lumpy_circles(size)
    for image in lumpy[1:] if size < 256 else lumpy:  # a 128 px octagon is within a pixel of its circle
        verdict = check(image, spec)
        assert "shape" in verdict.failures and verdict.deviation > 0.02, verdict.reasons


def blotch(image: Image.Image, scene, fraction_of_object: float, darken: float = 0.4) -> Image.Image:
    """`image` with a darker disc of the object's own colour (area `fraction_of_object` of the object)
    at the object's centroid: the dark blotch inside a square, too small for the stray-region rule."""
    pixels = np.asarray(image, dtype=np.float32).copy()
    mask = shape_mask(scene, pixels.shape[0]) > 0.5
    rows, cols = np.nonzero(mask)
    radius = np.sqrt(fraction_of_object * mask.sum() / np.pi)
    yy, xx = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    disc = np.hypot(yy - rows.mean(), xx - cols.mean()) <= radius
    pixels[disc] = np.array(COLOURS[scene.colour], dtype=np.float32) * darken
    return Image.fromarray(np.round(pixels).astype(np.uint8))


@pytest.mark.parametrize("size", [64, 256, 512])
def test_blotches_on_the_object_are_blemishes(size):
    for scene, spec, image in cases(size)[:12]:
        verdict = check(blotch(image, scene, 0.06), spec)
        assert "blemish" in verdict.failures, (scene, verdict.reasons)
        assert 0.03 < verdict.blemish < 0.1  # 6% drawn; rasterised at 64 px it can be 4%
        assert check(image, spec).blemish == 0.0  # the true render has none


@pytest.mark.parametrize("size", [128, 256])
def test_a_speck_on_the_object_is_not_a_blemish(size):
    for scene, spec, image in cases(size)[:12]:
        verdict = check(blotch(image, scene, 0.005), spec)
        assert "blemish" not in verdict.failures and 0.0 < verdict.blemish < 0.02, (scene, verdict.reasons)
