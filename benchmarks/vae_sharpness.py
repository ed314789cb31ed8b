"""The ceiling the embedded model's VAE sets on edge sharpness: decode(encode(true render)) per size.

    python benchmarks/vae_sharpness.py                 # 24 scenes at 64, 128, 256, 512 px
    python benchmarks/vae_sharpness.py --model some/other-shapes-model-folder

No cascade can draw edges sharper than its decoder draws a true render's own latents, so this row is the
upper bound for the "edge sharpness vs truth" column of benchmarks/composition.py. Also shows what bilinear
up-sampling of a 64 px render's latents (the cascade's `up` before any denoising) decodes to.
Writes benchmarks/results/vae_sharpness.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.judging import publish  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.shapes.edges import measure  # noqa: E402
from selfcascade.shapes.world import PromptSpec, random_scene, render  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--sizes", default="64,128,256,512")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vae_sharpness.md"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    model = load_model(args.model)
    lines = [f"VAE of {Path(model.name).name}, {args.scenes} scenes per size; sharpness 1.0 = the true render.", "",
             "| size | decode(encode(render)) sharpness | grain | bilinear-up 64 px latents, sharpness |",
             "|---|---|---|---|"]
    for size in (int(s) for s in args.sizes.split(",")):
        rng = random.Random(size)
        round_trip, grain, upsampled = [], [], []
        for _ in range(args.scenes):
            scene = random_scene(rng)
            spec = PromptSpec(shape=scene.shape, colour=scene.colour)
            report = measure(model.decode(model.encode([render(scene, size)]))[0], spec)
            small = model.encode([render(scene, 64)])
            up = F.interpolate(small, size=(size // model.vae_scale_factor,) * 2, mode="bilinear")
            round_trip.append(report.sharpness), grain.append(report.grain)
            upsampled.append(measure(model.decode(up)[0], spec).sharpness)
        mean = lambda values: np.mean([v for v in values if v is not None])  # noqa: E731
        lines.append(f"| {size}x{size} | {mean(round_trip):.3f} | {mean(grain):.2f} | {mean(upsampled):.3f} |")
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
