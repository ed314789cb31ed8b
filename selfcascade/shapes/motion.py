"""The shapes world in motion: "a red circle moving right" is one shape travelling in a straight line.

Extends the image grammar minimally: ``<image prompt> [moving <right|left|up|down>]``. A clip is the same
`Scene` rendered at evenly spaced centres along the direction (the background and size stay put), so every
frame is ground truth for the strict image judge and the track (centroid per frame) for the direction.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from PIL import Image

from selfcascade.diffusion.motion_steering import (
    DIRECTIONS,  # one table of directions for the sampler and the shapes world
)
from selfcascade.shapes.world import PromptSpec, Scene, caption, parse_prompt, random_scene, render

MOTION_WORDS = ("moving", *DIRECTIONS)
TRAVEL = 0.36  # distance the shape's centre covers over a clip, as a fraction of the image side
_MOTION = re.compile(r"^(?P<still>.*?)(?:\s+moving\s+(?P<direction>right|left|up|down))?\s*$", re.IGNORECASE)


def parse_motion_prompt(prompt: str) -> tuple[PromptSpec | None, str | None]:
    """(what the frames show, the direction or None) of a motion prompt; (None, None) outside the grammar."""
    match = _MOTION.match(prompt)
    direction = match["direction"].lower() if match and match["direction"] else None
    return parse_prompt(match["still"] if match else prompt), direction


def random_clip_scene(rng: random.Random, spec: PromptSpec | None, direction: str | None) -> Scene:
    """A scene whose whole track (start to start + TRAVEL along `direction`) stays inside the frame."""
    scene = random_scene(rng, spec)
    if direction is None:
        return scene
    dx, dy = DIRECTIONS[direction]
    margin = scene.extent / 2 + 0.04
    low, high = margin, 1 - margin - TRAVEL
    if high < low:  # a large shape: travel what fits
        high = low
    start_x = rng.uniform(low, high) if dx > 0 else 1 - rng.uniform(low, high) if dx < 0 else scene.centre_x
    start_y = rng.uniform(low, high) if dy > 0 else 1 - rng.uniform(low, high) if dy < 0 else scene.centre_y
    return replace(scene, centre_x=start_x, centre_y=start_y)


def clip_centres(scene: Scene, direction: str | None, frames: int) -> list[tuple[float, float]]:
    """The shape's centre per frame, moving TRAVEL (clipped to the frame) along `direction`."""
    if direction is None or frames == 1:
        return [(scene.centre_x, scene.centre_y)] * frames
    dx, dy = DIRECTIONS[direction]
    margin = scene.extent / 2 + 0.02
    centres = []
    for index in range(frames):
        step = TRAVEL * index / (frames - 1)
        x = min(max(scene.centre_x + dx * step, margin), 1 - margin)
        y = min(max(scene.centre_y + dy * step, margin), 1 - margin)
        centres.append((x, y))
    return centres


def render_clip(scene: Scene, direction: str | None, frames: int, size: int = 64) -> list[Image.Image]:
    """The clip's frames: `scene` drawn at each centre of its track."""
    return [render(replace(scene, centre_x=x, centre_y=y), size) for x, y in clip_centres(scene, direction, frames)]


def motion_caption(scene: Scene, direction: str | None, rng: random.Random | None = None) -> str:
    """The clip's prompt (size and background words dropped at random with `rng`, as for images)."""
    words = caption(scene, rng)
    return f"{words} moving {direction}" if direction else words


MIN_TRAVEL = 0.05  # net centroid displacement along the direction (fraction of the side) that counts as moving
MAX_STEP = 0.12  # largest centroid move between consecutive frames: beyond it the object jumped, not moved


def centroid(mask) -> tuple[float, float] | None:
    """The (x, y) centre of an object mask (a bool array), as fractions of the width and height; None if empty."""
    if mask is None or not mask.any():
        return None
    ys, xs = mask.nonzero()
    return xs.mean() / mask.shape[1], ys.mean() / mask.shape[0]


def track_follows(track: list, direction: str) -> list[str]:
    """Why a track (one centroid or None per frame) does not follow `direction`; empty when it does. It must
    move at least MIN_TRAVEL along the direction from the first found centroid to the last, and never jump
    more than MAX_STEP between consecutive found frames: an object that vanishes on the left and reappears
    on the right has travelled right only on paper (the training clips step 0.36 / (frames - 1), 0.024 of
    the side at 16 frames)."""
    found = [point for point in track if point is not None]
    if len(found) < 2:
        return ["no track (the object is found in fewer than 2 frames)"]
    dx, dy = DIRECTIONS[direction]
    reasons = []
    moved = (found[-1][0] - found[0][0]) * dx + (found[-1][1] - found[0][1]) * dy
    if moved < MIN_TRAVEL:
        reasons.append(f"moved {moved:+.2f} of the side {direction} (at least {MIN_TRAVEL})")
    jump = max(((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5 for a, b in zip(found, found[1:]))
    if jump > MAX_STEP:
        reasons.append(f"jumps {jump:.2f} of the side between frames (at most {MAX_STEP})")
    return reasons


SIZE_CHANGE_LIMIT = 1.25  # largest / smallest object extent over a clip (the training clips keep it at 1)


def clip_unsteady(verdicts) -> list[str]:
    """What a per-frame judge cannot see, from the frames' verdicts (selfcascade.shapes.detector.check): the
    background must keep its colour and the object its size from frame to frame. Returns one reason per
    failure (empty: steady). A grey background that turns black for a frame, or a circle that shrinks by a
    third while it moves, is a wrong video even when every frame is a right picture."""
    reasons = []
    backgrounds = {verdict.background for verdict in verdicts if verdict.background}
    if len(backgrounds) > 1:
        reasons.append(f"background changes colour ({', '.join(sorted(backgrounds))})")
    extents = [verdict.extent for verdict in verdicts if verdict.extent]
    if extents and max(extents) / min(extents) > SIZE_CHANGE_LIMIT:
        reasons.append(f"object size changes {max(extents) / min(extents):.2f}x (limit {SIZE_CHANGE_LIMIT}x)")
    return reasons
