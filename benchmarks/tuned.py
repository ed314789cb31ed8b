"""Tuned (trained upsamplers) vs tuning-free Self-Cascade on the embedded model, and the adapter's size.

    python benchmarks/tuned.py                       # 32 prompt x seed pairs at 256 px
    python benchmarks/tuned.py --pairs 8 --adapter assets/shapes-adapter

Prints (and writes to benchmarks/results/tuned.md):
  1. trainable parameters of the upsamplers on the embedded, SD 2.1 and SDXL architectures (shared/configs);
  2. per mode at 4x per side: correct composition, edge sharpness relative to the renderer's ground truth of
     the same prompts at the same size (1.0 = as sharp as a true render), seconds per image and time vs
     direct, all measured side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.composition import prompt_seed_pairs  # noqa: E402
from selfcascade.cascade import run  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.presets import request_defaults  # noqa: E402
from selfcascade.request import GenerationRequest  # noqa: E402
from selfcascade.shapes.detector import check  # noqa: E402
from selfcascade.shapes.world import random_scene, render  # noqa: E402
from selfcascade.upsampler import new_upsamplers  # noqa: E402

CONFIGS = ROOT.parent / "shared" / "configs"


def edge_sharpness(image: Image.Image) -> float:
    """Mean of the strongest 1% of gradient magnitudes (per pixel, RGB): high for crisp shape edges."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    gy, gx = np.gradient(pixels, axis=(0, 1))
    magnitude = np.sqrt(gx**2 + gy**2).sum(-1).ravel()
    top = np.sort(magnitude)[-max(1, magnitude.size // 100):]
    return float(top.mean())


def parameter_counts(embedded) -> list[tuple[str, int]]:
    rows = [("embedded shapes model", new_upsamplers(embedded.unet, "embedded"))]
    for name, file in (("SD 2.1", "sd21_unet.json"), ("SDXL", "sdxl_unet.json")):
        if (CONFIGS / file).is_file():
            with torch.device("meta"):
                unet = UNet2DConditionModel.from_config(json.loads((CONFIGS / file).read_text()))
            rows.append((name, new_upsamplers(unet, name)))
    return [(name, sum(p.numel() for p in module.parameters())) for name, module in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--adapter", default=str(ROOT / "assets" / "shapes-adapter"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tuned.md"))
    args = parser.parse_args()

    model = load_model(None)
    settings = request_defaults(None)
    lines = ["| architecture | upsampler parameters |", "|---|---|"]
    lines += [f"| {name} | {count:,} ({count / 1e6:.4f}M) |" for name, count in parameter_counts(model)]

    modes = ("direct", "tuning-free", "tuned")
    correct = dict.fromkeys(modes, 0)
    seconds = dict.fromkeys(modes, 0.0)
    sharpness = {mode: [] for mode in modes}
    truth = []
    rng = random.Random(99)
    for spec, seed in prompt_seed_pairs(args.pairs):
        truth.append(edge_sharpness(render(random_scene(rng, spec), args.size)))
        for mode in modes:
            request = GenerationRequest(spec.to_prompt(), args.size, args.size, mode=mode, seed=seed,
                                        adapter=args.adapter if mode == "tuned" else None, **settings)
            started = time.perf_counter()
            image = run(request, model, previews=False).image
            seconds[mode] += time.perf_counter() - started
            correct[mode] += check(image, spec).correct
            sharpness[mode].append(edge_sharpness(image))
    truth_mean = float(np.mean(truth))
    lines += ["", f"{args.pairs} prompt x seed pairs at {args.size}x{args.size} (trained at 64x64), "
              f"{settings['steps']} {settings['scheduler']} steps, strength {settings['strength']}.", "",
              "| mode | correct composition | edge sharpness vs ground truth | seconds / image | time vs direct |",
              "|---|---|---|---|---|"]
    for mode in modes:
        lines.append(f"| {mode} | {100 * correct[mode] / args.pairs:.1f}% | "
                     f"{np.mean(sharpness[mode]) / truth_mean:.2f} | {seconds[mode] / args.pairs:.2f} | "
                     f"{seconds[mode] / seconds['direct']:.2f}x |")
    table = "\n".join(lines) + "\n"
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
