"""The shapes world in motion: grammar, tracks that stay in the frame and move the prompted way."""

import random
from dataclasses import replace

import numpy as np
import pytest

from selfcascade.shapes.detector import check, object_mask
from selfcascade.shapes.motion import (
    DIRECTIONS,
    centroid,
    clip_unsteady,
    motion_caption,
    parse_motion_prompt,
    random_clip_scene,
    render_clip,
    track_follows,
)
from selfcascade.shapes.world import render


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


def test_clip_judge_fails_changing_backgrounds_and_sizes():
    rng = random.Random(5)
    scene = random_clip_scene(rng, None, "right")
    spec = parse_motion_prompt(motion_caption(scene, "right"))[0]
    frames = render_clip(scene, "right", 8, 64)
    assert clip_unsteady([check(frame, spec) for frame in frames]) == []  # ground truth is steady
    other = "black" if scene.background != "black" else "white"
    swapped = frames[:3] + [render(replace(scene, background=other), 64)] + frames[4:]
    assert any("background" in reason for reason in clip_unsteady([check(frame, spec) for frame in swapped]))
    shrinking = [render(replace(scene, extent=scene.extent * (1 - 0.06 * index)), 64) for index in range(8)]
    assert any("size" in reason for reason in clip_unsteady([check(frame, spec) for frame in shrinking]))


def test_track_judge_passes_true_clips_and_fails_wrong_ones():
    rng = random.Random(3)
    scene = random_clip_scene(rng, None, "right")
    spec = parse_motion_prompt(motion_caption(scene, "right"))[0]
    frames = render_clip(scene, "right", 8, 64)
    track = [centroid(object_mask(frame, spec)) for frame in frames]
    assert track_follows(track, "right") == []
    assert any("moved" in reason for reason in track_follows(track, "left"))
    assert any("moved" in reason for reason in track_follows(track[:1] * 8, "right"))  # standing still
    # It vanishes on the left and reappears on the right: a net move right, but not a motion.
    jumping = frames[:4] + [render(replace(scene, centre_x=0.85), 64)] * 4
    reasons = track_follows([centroid(object_mask(frame, spec)) for frame in jumping], "right")
    assert len(reasons) == 1 and "jumps" in reasons[0]
    assert track_follows([None] * 8, "right") == ["no track (the object is found in fewer than 2 frames)"]
