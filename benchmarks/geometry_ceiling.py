"""How well can any cascade do that keeps the base sample's geometry? The ceiling the base model sets.

    python benchmarks/geometry_ceiling.py --pairs 48 --sizes 128,256,512 [--first-seed 5000] [--threads 2]

A cascade keeps what its first stage drew (that is the method: the pivot guides every larger stage). The
best such cascade would change nothing but the edge: it would redraw the 64 px sample at the target size with
a perfectly crisp edge placed exactly where the sample's edge is. `ideal_upscale` does that (bicubic
up-sampling of the object's coverage, then a steep ramp around its 0.5 level, which stays put), and the
strict judge scores the result. Three sources, on the same prompt x seed pairs:

- truth: the world's own 64 px render of a scene of the prompt (how much a 64 px image can hold at all);
- truth through the VAE: that render encoded and decoded by the model's VAE (what the latent space can hold:
  the best a perfect UNet could hand on);
- model: the embedded model's own 64 px sample at the preset's first-stage settings.

If the model row is far below the truth row, the base model's geometry (lumpy circles, rounded corners,
wavy square sides that are sub-pixel at 64 px) is what limits every cascade, and the cure is a better base
model, not a better upper stage. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.judging import prompt_seed_pairs  # noqa: E402
from benchmarks.sweep import NUMBERS  # noqa: E402
from selfcascade.cascade.pipeline import run  # noqa: E402
from selfcascade.cascade.presets import request_defaults  # noqa: E402
from selfcascade.cascade.request import GenerationRequest  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.models.vae import decode_to_uint8, encode_mean  # noqa: E402
from selfcascade.shapes.detector import check, object_mask  # noqa: E402
from selfcascade.shapes.world import PromptSpec, random_scene, render  # noqa: E402

BASE = 64


def ideal_upscale(image: Image.Image, spec: PromptSpec, size: int) -> Image.Image | None:
    """The image at `size` px with the object's edge where it was, made crisp; None if no object is found."""
    mask = object_mask(image, spec)
    if mask is None:
        return None
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    inner = ndimage.binary_erosion(mask)
    colour = np.median(pixels[inner if inner.any() else mask], axis=0)
    background = np.median(pixels[~ndimage.binary_dilation(mask, iterations=2)], axis=0)
    axis = colour - background
    alpha = np.clip((pixels - background) @ axis / (axis @ axis), -0.5, 1.5).astype(np.float32)
    factor = size / image.width
    big_alpha = np.asarray(Image.fromarray(alpha).resize((size, size), Image.Resampling.BICUBIC))
    # Steepen around 0.5 (the edge position does not move): a ramp about one target pixel wide.
    big_alpha = np.clip((big_alpha - 0.5) * factor + 0.5, 0, 1)[..., None]
    around = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    return Image.fromarray(np.clip(around * (1 - big_alpha) + colour * big_alpha, 0, 255).astype(np.uint8))


@torch.no_grad()
def through_vae(images: list[Image.Image], model) -> list[Image.Image]:
    """decode(encode(image)) with the model's VAE, at the encoder's mean."""
    pixels = torch.from_numpy(np.stack([np.asarray(i, dtype=np.float32) for i in images])) / 127.5 - 1
    latents = encode_mean(model.vae, pixels.permute(0, 3, 1, 2), tiled=False)
    return [Image.fromarray(a) for a in decode_to_uint8(model.vae, latents, tiled=False).numpy()]


def model_samples(pairs: list[tuple[PromptSpec, int]], model,
                  overrides: dict | None = None) -> list[Image.Image]:
    """The model's 64 px samples at the preset's first-stage settings, or with `overrides` (e.g. steps)."""
    defaults = request_defaults(None)
    settings = {**{k: defaults[k] for k in ("steps", "guidance", "scheduler")}, **(overrides or {})}
    samples = []
    for spec, seed in pairs:
        request = GenerationRequest(prompt=spec.to_prompt(), width=BASE, height=BASE, seed=seed, **settings)
        samples.append(run(request, model).image)
    return samples


def score(images: list[Image.Image], pairs, size: int) -> tuple[int, Counter, dict]:
    correct, reasons, outlines = 0, Counter(), {}
    for image, (spec, _) in zip(images, pairs):
        big = image if size == BASE else ideal_upscale(image, spec, size)
        if big is None:
            reasons["missing"] += 1
            continue
        verdict = check(big, spec)
        correct += verdict.correct
        reasons.update(verdict.failures)
        if verdict.outline is not None:
            outlines.setdefault(spec.shape, []).append(verdict.outline)
    return correct, reasons, {shape: float(np.mean(v)) for shape, v in sorted(outlines.items())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--first-seed", type=int, default=5000)
    parser.add_argument("--sizes", default="128,256,512")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="a model folder to measure instead of the embedded default")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a first-stage sampling setting of the model row (steps, guidance, scheduler)")
    args = parser.parse_args(argv)
    overrides = {key: NUMBERS.get(key, str)(value) for key, value in (item.split("=", 1) for item in args.set)}
    torch.set_num_threads(args.threads)
    pairs = prompt_seed_pairs(args.pairs, first_seed=args.first_seed)
    model = load_model(args.model)
    truth = [render(random_scene(random.Random(seed), spec), BASE) for spec, seed in pairs]
    sources = {"truth": truth, "truth through the VAE": through_vae(truth, model),
               "model": model_samples(pairs, model, overrides)}
    print(f"{args.pairs} prompt x seed pairs from seed {args.first_seed}; a 64 px image up-sampled in place "
          f"(edge kept, made crisp), strict judge{'; model sampled with ' + str(overrides) if overrides else ''}\n")
    print("| source | size | correct | mean outline px (circle / square / triangle) | failures |")
    print("|---|---|---|---|---|")
    for size in [BASE] + [int(s) for s in args.sizes.split(",")]:
        for name, images in sources.items():
            correct, reasons, outlines = score(images, pairs, size)
            shapes = " / ".join(f"{outlines.get(s, float('nan')):.2f}" for s in ("circle", "square", "triangle"))
            failures = ", ".join(f"{k} {v}" for k, v in reasons.most_common())
            print(f"| {name} | {size} | {correct}/{args.pairs} ({correct / args.pairs:.0%}) | {shapes} | "
                  f"{failures or '-'} |")


if __name__ == "__main__":
    main()
