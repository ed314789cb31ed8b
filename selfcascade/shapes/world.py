"""The embedded "shapes" world: one anti-aliased shape on a plain, mildly graded background.

A `Scene` is resolution-free (the centre is a fraction of the width and of the height, the extent a fraction of
the shorter side), so `render(scene, size)` draws the same picture at 64, 128, 256 or 512 px, and on
non-square canvases (`size` = (width, height)) with the shape undistorted. Later stages use that for ground
truth and adapter data.
Prompt grammar: ``a [small|large] <colour> <shape> [on a <background> background]``; a word left out
means "any".
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (25, 191, 38),
    "blue": (25, 64, 242),
    "yellow": (242, 217, 25),
    "magenta": (217, 25, 217),
    "cyan": (25, 217, 217),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (247, 247, 247),
    "gray": (191, 191, 191),
    "black": (31, 31, 31),
    "beige": (230, 217, 184),
}
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
# Shape extent (side of its bounding box) as a fraction of the image side, per size word.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.22, 0.34), "large": (0.44, 0.60)}
GRADIENT_AMPLITUDE = 14  # +- per channel across the image: "mild"
SUPERSAMPLING = 4  # draw at 4x and box-filter down: anti-aliased edges
VOCABULARY = ("a", "on", "background", *SIZES, *COLOURS, *SHAPES, *BACKGROUNDS)


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    background: str
    size_word: str
    extent: float  # bounding-box side / the image's shorter side
    centre_x: float  # fraction of the image's width
    centre_y: float  # fraction of the image's height
    gradient_angle: float  # radians
    gradient_strength: float  # 0..1 of GRADIENT_AMPLITUDE


@dataclass(frozen=True)
class PromptSpec:
    """What a prompt asks for; None means "any"."""

    shape: str | None = None
    colour: str | None = None
    size_word: str | None = None
    background: str | None = None

    def to_prompt(self) -> str:
        words = ["a"]
        if self.size_word:
            words.append(self.size_word)
        words += [self.colour or "", self.shape or "shape"]
        if self.background:
            words += ["on", "a", self.background, "background"]
        return " ".join(w for w in words if w)


_PROMPT = re.compile(
    r"^\s*(?:an?\s+)?(?:(?P<size>small|large)\s+)?(?:(?P<colour>\w+)\s+)?(?P<shape>circle|square|triangle)"
    r"(?:\s+on\s+an?\s+(?P<background>\w+)\s+background)?\s*$",
    re.IGNORECASE,
)


def parse_prompt(prompt: str) -> PromptSpec | None:
    """Read a prompt of the shapes grammar; None when it is not one (the model may still draw something)."""
    match = _PROMPT.match(prompt)
    if not match:
        return None
    colour, background = match["colour"], match["background"]
    if colour and colour.lower() not in COLOURS:
        return None
    if background and background.lower() not in BACKGROUNDS:
        return None
    return PromptSpec(
        shape=match["shape"].lower(),
        colour=colour.lower() if colour else None,
        size_word=match["size"].lower() if match["size"] else None,
        background=background.lower() if background else None,
    )


def random_scene(rng: random.Random, spec: PromptSpec | None = None, aspect: float = 1.0) -> Scene:
    """A scene satisfying `spec` (every unspecified attribute drawn at random), for a canvas of width / height
    `aspect` (1: square; the same draws as before non-square canvases existed)."""
    spec = spec or PromptSpec()
    size_word = spec.size_word or rng.choice(SIZES)
    extent = rng.uniform(*SIZE_RANGES[size_word])
    margin = extent / 2 + 0.04  # in shorter sides
    margin_x, margin_y = margin * min(1.0, 1 / aspect), margin * min(1.0, aspect)
    return Scene(
        shape=spec.shape or rng.choice(SHAPES),
        colour=spec.colour or rng.choice(list(COLOURS)),
        background=spec.background or rng.choice(list(BACKGROUNDS)),
        size_word=size_word,
        extent=extent,
        centre_x=rng.uniform(margin_x, 1 - margin_x),
        centre_y=rng.uniform(margin_y, 1 - margin_y),
        gradient_angle=rng.uniform(0, 2 * np.pi),
        gradient_strength=rng.uniform(0.0, 1.0),
    )


def caption(scene: Scene, rng: random.Random | None = None, keep_probability: float = 0.5) -> str:
    """The scene's prompt; with `rng`, size and background words are each dropped at random ("any")."""
    keep = (lambda: rng.random() < keep_probability) if rng else (lambda: True)
    return PromptSpec(
        shape=scene.shape,
        colour=scene.colour,
        size_word=scene.size_word if keep() else None,
        background=scene.background if keep() else None,
    ).to_prompt()


def _sides(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _background(scene: Scene, size: int | tuple[int, int]) -> np.ndarray:
    width, height = _sides(size)
    yy, xx = np.meshgrid((np.arange(height) + 0.5) / height - 0.5, (np.arange(width) + 0.5) / width - 0.5,
                         indexing="ij")
    ramp = np.cos(scene.gradient_angle) * xx + np.sin(scene.gradient_angle) * yy  # in [-0.71, 0.71]
    offset = ramp * 2 * GRADIENT_AMPLITUDE * scene.gradient_strength
    base = np.array(BACKGROUNDS[scene.background], dtype=np.float32)
    return np.clip(base[None, None, :] + offset[..., None], 0, 255)


def shape_mask(scene: Scene, size: int | tuple[int, int]) -> np.ndarray:
    """Anti-aliased coverage (0..1, float32, height x width) of the scene's shape; `size`: side or (w, h)."""
    width, height = _sides(size)
    big_w, big_h = width * SUPERSAMPLING, height * SUPERSAMPLING
    half = scene.extent * min(big_w, big_h) / 2
    cx, cy = scene.centre_x * big_w, scene.centre_y * big_h
    box = (cx - half, cy - half, cx + half, cy + half)
    canvas = Image.new("L", (big_w, big_h), 0)
    draw = ImageDraw.Draw(canvas)
    if scene.shape == "circle":
        draw.ellipse(box, fill=255)
    elif scene.shape == "square":
        draw.rectangle(box, fill=255)
    else:  # upright isosceles triangle filling its bounding box
        draw.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=255)
    small = canvas.resize((width, height), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def render(scene: Scene, size: int | tuple[int, int] = 64) -> Image.Image:
    """Draw `scene` as a size x size (or width x height) RGB image."""
    coverage = shape_mask(scene, size)[..., None]
    colour = np.array(COLOURS[scene.colour], dtype=np.float32)[None, None, :]
    pixels = _background(scene, size) * (1 - coverage) + colour * coverage
    return Image.fromarray(np.round(pixels).astype(np.uint8), "RGB")
