"""Close-up training crops for the embedded model: 64 px windows of scenes rendered 2x or 4x larger.

Real base models are trained on random crops of photographs much larger than their training size, so their
convolutions have seen what an edge looks like when the object is several times larger than the crop: a long,
gently curving boundary. The embedded model's data set held whole 64 px scenes only, so an upper stage of the
cascade, where a circle is 2x or 4x larger than anything the UNet saw, is outside everything it learned; its
last, low-noise steps then flatten large circles into polygons (docs/experiments.md, per-stage outlines).

These crops keep the scene's caption, and they train only the low-noise timesteps (t < max_t), the ones the
upper stages run (t <= strength * T): the layout a prompt gets at high noise is still learned from whole
scenes alone, so the native 64 px sample is not taught to draw close-ups.

Measured (docs/experiments.md, "Close-up crops in the base model's training"): with the default upper stages
the circles came out no rounder (with the plain full-size call rounder, yet lumpier than the default's) and
the native samples worse (shapes cut by the frame), so the shipped model is trained without them.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from selfcascade.shapes.world import random_scene, render, shape_mask

CROP = 64
EDGE_SHARE = 0.8  # crops chosen to cut the object's outline (the rest anywhere: flat regions are data too)


def _crop_origin(coverage: np.ndarray, rng: random.Random, want_edge: bool) -> tuple[int, int]:
    """Top-left corner of a CROP x CROP window; with `want_edge`, one holding both object and background."""
    limit = coverage.shape[0] - CROP
    origin = (rng.randint(0, limit), rng.randint(0, limit))
    for _ in range(30 if want_edge else 0):
        share = coverage[origin[0]:origin[0] + CROP, origin[1]:origin[1] + CROP].mean()
        if 0.1 < share < 0.9:
            break
        origin = (rng.randint(0, limit), rng.randint(0, limit))
    return origin


def zoom_crops(count: int, seed: int, zooms: tuple[int, ...] = (2, 4)) -> tuple[torch.Tensor, list]:
    """`count` 64 px crops (pixels in [-1, 1], N x 3 x 64 x 64) of scenes rendered at 64 * zoom px, with
    their scenes (for the captions); the zoom factors in turn."""
    rng = random.Random(seed)
    crops, scenes = [], []
    for index in range(count):
        zoom = zooms[index % len(zooms)]
        scene = random_scene(rng)
        side = CROP * zoom
        pixels = np.asarray(render(scene, side))
        top, left = _crop_origin(shape_mask(scene, side), rng, rng.random() < EDGE_SHARE)
        crops.append(pixels[top:top + CROP, left:left + CROP])
        scenes.append(scene)
    images = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return images, scenes
