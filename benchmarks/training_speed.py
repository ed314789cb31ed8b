"""Training cost: the upsamplers (Algorithm 1) vs full fine-tuning of the UNet, same data and stage size.

    python benchmarks/training_speed.py               # 120 steps each, 128 px stage, batch 4
    python benchmarks/training_speed.py --steps 40

Both start from the same frozen embedded model, so their validation losses start equal: the epsilon MSE on
one fixed batch of held-out 128 px renders with fixed timesteps (t <= K) and noise; the upsamplers also see
the 64 px pivot, which is the method. Prints seconds per step, trainable parameters, the validation loss
curve, and the wall time each needs to reach the best loss the slower one reached; writes the table to
benchmarks/results/training_speed.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from diffusers import DDPMScheduler  # noqa: E402

from selfcascade.adapters.upsampler import new_upsamplers  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.shapes.train_adapter import render_examples  # noqa: E402
from selfcascade.training.data.images import TrainingImages  # noqa: E402
from selfcascade.training.loop import training_loss  # noqa: E402


def full_finetune_loss(model, unet, scheduler, pixels, captions, max_timestep, generator):
    """The ordinary diffusion loss at the stage size, every UNet weight trainable (no pivot)."""
    with torch.no_grad():
        z0 = model.vae.encode(pixels).latent_dist.mean * model.vae.config.scaling_factor
        conditioning = model.encode_prompt(captions, "", guided=False)
    t = torch.randint(1, max_timestep + 1, (len(pixels),), generator=generator)
    noise = torch.randn(z0.shape, generator=generator)
    prediction = unet(scheduler.add_noise(z0, noise, t), t, conditioning.positive).sample
    return F.mse_loss(prediction, noise)


def curve(name, loss_fn, parameters, data, steps, batch, lr, validate, every):
    optimizer = torch.optim.AdamW(parameters, lr=lr)
    rng, generator = random.Random(0), torch.Generator().manual_seed(0)
    points, elapsed = [(0, 0.0, validate())], 0.0
    for step in range(1, steps + 1):
        pixels, captions = data.batch(batch, rng)
        started = time.perf_counter()
        loss = loss_fn(pixels, captions, generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        elapsed += time.perf_counter() - started
        if step % every == 0:
            points.append((step, elapsed, validate()))
            print(f"{name} step {step}: val {points[-1][2]:.4f}, {elapsed / step:.3f} s/step", flush=True)
    return points


def time_to_reach(points, target):
    return next((seconds for _, seconds, loss in points if loss <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training_speed.md"))
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_model(None)
    scheduler = DDPMScheduler.from_config(model.scheduler_config)
    max_timestep = int(0.3 * scheduler.config.num_train_timesteps) - 1
    with tempfile.TemporaryDirectory() as folder:
        data = TrainingImages(render_examples(Path(folder) / "train", 256, 128, 1), (128, 128), 16)
        held_out = TrainingImages(render_examples(Path(folder) / "val", 16, 128, 2), (128, 128), 16)
    val_pixels, val_captions = held_out.batch(16, random.Random(5))

    upsamplers = new_upsamplers(model.unet, model.name)
    unet = copy.deepcopy(model.unet).requires_grad_(True).train()

    def validate_upsamplers():
        with torch.no_grad():
            return training_loss(model, upsamplers, scheduler, val_pixels, val_captions, max_timestep,
                                 torch.Generator().manual_seed(7)).item()

    def validate_full():
        with torch.no_grad():
            return full_finetune_loss(model, unet, scheduler, val_pixels, val_captions, max_timestep,
                                      torch.Generator().manual_seed(7)).item()

    ours = curve("upsamplers", lambda p, c, g: training_loss(model, upsamplers, scheduler, p, c, max_timestep, g),
                 list(upsamplers.parameters()), data, args.steps, args.batch, 2e-3, validate_upsamplers, args.every)
    full = curve("full fine-tune", lambda p, c, g: full_finetune_loss(model, unet, scheduler, p, c, max_timestep, g),
                 list(unet.parameters()), data, args.steps, args.batch, 1e-4, validate_full, args.every)
    target = max(min(loss for *_, loss in ours), min(loss for *_, loss in full))
    rows = []
    for name, points, parameters in (("upsamplers (Algorithm 1)", ours, upsamplers.parameters()),
                                     ("full UNet fine-tune", full, unet.parameters())):
        count = sum(p.numel() for p in parameters)
        reach = time_to_reach(points, target)
        rows.append(f"| {name} | {count:,} | {points[-1][1] / args.steps:.3f} | {points[0][2]:.4f} | "
                    f"{points[-1][2]:.4f} | {'%.1f s' % reach if reach is not None else 'not reached'} |")
    table = (f"Embedded model, stage 64 -> 128 px, batch {args.batch}, {args.steps} steps each, t <= K = "
             f"{max_timestep + 1}; validation: 16 held-out renders, fixed t and noise.\n\n"
             f"| method | trainable parameters | s / step | val loss at start | val loss at end | "
             f"time to val loss {target:.4f} |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print("\n" + table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
