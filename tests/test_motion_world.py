"""The shapes world in motion: grammar, tracks that stay in the frame and move the prompted way."""

import random

import numpy as np
import pytest

from selfcascade.shapes.detector import check, object_mask
from selfcascade.shapes.motion import DIRECTIONS, motion_caption, parse_motion_prompt, random_clip_scene, render_clip


def test_motion_grammar():
    spec, direction = parse_motion_prompt("a small red circle on a white background moving up")
    assert (spec.shape, spec.colour, spec.size_word, spec.background, direction) == (
        "circle", "red", "small", "white", "up")
    spec, direction = parse_motion_prompt("a blue square")
    assert spec.shape == "square" and direction is None
    assert parse_motion_prompt("a red circle moving sideways")[0] is None


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_clips_are_ground_truth_and_move_the_prompted_way(direction):
    rng = random.Random(3)
    scene = random_clip_scene(rng, None, direction)
    frames = render_clip(scene, direction, 8, 64)
    spec = parse_motion_prompt(motion_caption(scene, direction))[0]
    assert all(check(frame, spec).correct for frame in frames)  # every frame passes the strict judge
    centres = [np.argwhere(object_mask(frame, spec)).mean(0) for frame in (frames[0], frames[-1])]
    dy, dx = centres[1] - centres[0]
    along = dx * DIRECTIONS[direction][0] + dy * DIRECTIONS[direction][1]
    assert along > 0.1 * 64
