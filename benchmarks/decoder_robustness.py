"""How a model folder's VAE decodes latents that are slightly wrong: true renders' latents, perturbed, judged.

    python benchmarks/decoder_robustness.py selfcascade/assets/shapes-model DIR [--renders 32] [--levels 0.2,0.4]

A UNet's errors are mostly smooth (a wrong tint over a region, not per-pixel noise). Each true 64 px render of
a random captioned scene is encoded, its latent mean perturbed, decoded and judged strictly
(`selfcascade.shapes.detector.check`), for two kinds of perturbation of the same size (in standard deviations
of the latents): a smooth field (4 x 4 values per image, bicubic: `train_decoder.smooth_field`)
and white noise. A decoder that turns small smooth perturbations into colour blotches will decode a UNet's
small errors as stray regions and blemishes, however good the UNet. Prints one row per folder, kind and level.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfcascade.shapes.detector import check  # noqa: E402
from selfcascade.shapes.train_decoder import smooth_field  # noqa: E402
from selfcascade.shapes.world import caption, parse_prompt, random_scene, render  # noqa: E402


def perturbation(shape: torch.Size, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Unit-size noise of `kind`: 'smooth' (a 4 x 4 field up-sampled bicubically) or 'white'."""
    return torch.randn(shape, generator=generator) if kind == "white" else smooth_field(shape, generator)


def score(vae: AutoencoderKL, renders: int, kind: str, level: float) -> tuple[int, Counter]:
    rng, correct, reasons = random.Random(5), 0, Counter()
    for index in range(renders):
        scene = random_scene(rng)
        spec = parse_prompt(caption(scene, rng, keep_probability=1.0))
        pixels = torch.from_numpy(np.asarray(render(scene, 64), dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
        with torch.no_grad():
            latents = vae.encode(pixels[None]).latent_dist.mean
            noise = perturbation(latents.shape, kind, torch.Generator().manual_seed(index))
            decoded = vae.decode(latents + level * latents.std() * noise).sample[0]
        image = Image.fromarray(((decoded.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy())
        verdict = check(image, spec)
        correct += verdict.correct
        reasons.update(verdict.failures)
    return correct, reasons


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model folders (with a vae/ subfolder)")
    parser.add_argument("--renders", type=int, default=32)
    parser.add_argument("--levels", default="0.2,0.4", help="perturbation sizes, in latent standard deviations")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    print(f"{args.renders} true 64 px renders per row, encoded, perturbed, decoded, judged strictly\n")
    print("| model | perturbation | size (latent std) | correct | failures |")
    print("|---|---|---|---|---|")
    for folder in args.models:
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae").eval()
        for kind in ("white", "smooth"):
            for level in (float(v) for v in args.levels.split(",")):
                correct, reasons = score(vae, args.renders, kind, level)
                failures = ", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "-"
                print(f"| {folder} | {kind} | {level:g} | {correct}/{args.renders} | {failures} |", flush=True)


if __name__ == "__main__":
    main()
