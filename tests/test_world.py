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
