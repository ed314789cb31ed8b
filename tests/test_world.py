import random

import numpy as np
import pytest

from selfcascade.shapes.detector import check
from selfcascade.shapes.world import PromptSpec, caption, parse_prompt, random_scene, render


def test_prompt_grammar_round_trip():
    spec = parse_prompt("a large red circle on a gray background")
    assert spec == PromptSpec("circle", "red", "large", "gray")
    assert parse_prompt("A Cyan triangle") == PromptSpec("triangle", "cyan")
    assert parse_prompt("a pink elephant") is None
    assert parse_prompt("a teal circle") is None
    assert PromptSpec("square", "blue").to_prompt() == "a blue square"


def test_same_scene_at_every_size():
    scene = random_scene(random.Random(3), PromptSpec("circle", "blue", "large", "white"))
    small = np.asarray(render(scene, 64), dtype=np.float32)
    for size in (128, 256, 512):
        image = render(scene, size)
        assert image.size == (size, size)
        shrunk = np.asarray(image.resize((64, 64), resample=2), dtype=np.float32)  # bilinear
        assert np.abs(shrunk - small).mean() < 3.0


@pytest.mark.parametrize("size", [64, 256])
def test_detector_accepts_ground_truth(size):
    rng = random.Random(0)
    correct = 0
    for _ in range(60):
        scene = random_scene(rng)
        spec = parse_prompt(caption(scene))
        correct += check(render(scene, size), spec).correct
    assert correct >= 58


def test_detector_rejects_wrong_images():
    rng = random.Random(1)
    scene = random_scene(rng, PromptSpec("square", "green", "large", "black"))
    image = render(scene, 64)
    assert check(image, PromptSpec("square", "green", "large", "black")).correct
    assert not check(image, PromptSpec("circle", "green")).correct
    assert not check(image, PromptSpec("square", "red")).correct
    assert not check(image, PromptSpec("square", "green", "small")).correct
    assert not check(image, PromptSpec("square", "green", background="white")).correct
    tiled = render(scene, 64).resize((32, 32))
    from PIL import Image

    mosaic = Image.new("RGB", (64, 64))
    for x in (0, 32):
        for y in (0, 32):
            mosaic.paste(tiled, (x, y))
    verdict = check(mosaic, PromptSpec("square", "green"))
    assert not verdict.correct and verdict.blobs == 4


@pytest.mark.parametrize("size", [(96, 48), (48, 96), (320, 192), (256, 128)])
def test_non_square_canvases_keep_the_shape_undistorted(size):
    rng = random.Random(5)
    for shape in ("circle", "square", "triangle"):
        spec = PromptSpec(shape, "red")
        scene = random_scene(rng, spec, aspect=size[0] / size[1])
        image = render(scene, size)
        assert image.size == size
        mask = np.asarray(image)[..., 1] < 120  # red on any background: the green channel is low
        rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        height, width = np.ptp(rows) + 1, np.ptp(columns) + 1
        assert abs(width - height) <= 1 + 0.02 * max(size)  # a circle stays a circle, not an ellipse
        assert 0 < rows.min() and rows.max() < size[1] - 1 and 0 < columns.min() and columns.max() < size[0] - 1
        assert check(image, spec).correct, check(image, spec).reasons


def test_square_canvas_is_the_same_as_a_side():
    scene = random_scene(random.Random(8))
    assert np.array_equal(np.asarray(render(scene, 64)), np.asarray(render(scene, (64, 64))))
