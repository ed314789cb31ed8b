"""Fine-tune the embedded model's VAE *decoder* on multi-scale renders, so edges stay crisp above 64 px.

    python -m selfcascade.shapes.train_decoder --model selfcascade/assets/shapes-model
    python -m selfcascade.shapes.train_decoder --model DIR --out DIR2 --sizes 64 --latent-noise 0.4 --steps 800

Why: the VAE was trained on crops of 64 px renders only. Decoding a true 256 px render's own latents gives
edges about 1.35x wider than the render's (benchmarks/vae_sharpness.py), so no cascade could reach the
ground truth's edge sharpness at 4x with it. `--latent-noise S` adds a smooth random field (4 x 4 per crop,
bicubic) of up to S latent standard deviations to the latents it decodes, so the decoder learns to map the
UNet's low-frequency errors back onto clean images instead of colour blotches. Only the decoder trains; the
encoder, and so the latent space the UNet was trained on, stays exactly as it was. Loss: L1 + MSE + an
image-gradient term (edges), on 64 px crops (aligned to the latent grid) of scenes rendered at 64, 128, 256
and 512 px. The previous decoder is kept in the log's numbers, not on disk: git has it (or use --out).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.optimization import get_cosine_schedule_with_warmup

from selfcascade.shapes.world import random_scene, render

SIZES = (64, 128, 256, 512)
CROP = 64


def render_crops(count: int, rng: random.Random, sizes: tuple[int, ...] = SIZES) -> torch.Tensor:
    """`count` 64 px crops of renders at sizes drawn from `sizes` (repeat one to weight it), in [-1, 1],
    aligned to the 4 px latent grid."""
    crops = []
    for _ in range(count):
        size = rng.choice(sizes)
        image = np.asarray(render(random_scene(rng), size), dtype=np.float32)
        y, x = (rng.randrange(0, size - CROP + 1) // 4 * 4 for _ in range(2))
        crops.append(image[y:y + CROP, x:x + CROP])
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2) / 127.5 - 1


def smooth_field(shape: torch.Size, generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit-size random field of `shape` (batch, channels, height, width): 4 x 4 values per latent, up-sampled
    bicubically. The low-frequency kind of error a UNet makes (a wrong tint over a region)."""
    coarse = torch.randn(*shape[:2], 4, 4, generator=generator)
    return F.interpolate(coarse, size=tuple(shape[-2:]), mode="bicubic", align_corners=False)


def smooth_latent_noise(shape: torch.Size, amount: float, latent_std: float,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """`smooth_field`, each sample scaled by a uniform draw of up to `amount` x `latent_std`: what a decoder
    trained only on encoder latents turns into colour blotches, and learns here to map back to clean images."""
    field = smooth_field(shape, generator)
    return amount * latent_std * torch.rand(shape[0], 1, 1, 1, generator=generator) * field


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences: penalises soft or ringing edges."""
    loss = 0.0
    for axis in (-1, -2):
        loss = loss + F.l1_loss(torch.diff(prediction, dim=axis), torch.diff(target, dim=axis))
    return loss


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="selfcascade/assets/shapes-model")
    parser.add_argument("--out", default=None, help="model folder to write (default: --model, in place); the "
                        "other components are copied from --model")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pool", type=int, default=6000, help="rendered crops to sample batches from")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="render sizes to crop from, comma-separated; repeat a size to weight it")
    parser.add_argument("--latent-noise", type=float, default=0.0,
                        help="largest smooth latent perturbation, in latent standard deviations (0: none)")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    rng = random.Random(args.seed)
    folder = Path(args.model) / "vae"
    vae = AutoencoderKL.from_pretrained(folder)
    vae.requires_grad_(False)
    decoder = [vae.post_quant_conv, vae.decoder]
    parameters = [p for module in decoder for p in module.parameters()]
    for p in parameters:
        p.requires_grad_(True)
    started = time.time()
    pool = render_crops(args.pool, rng, tuple(int(s) for s in args.sizes.split(",")))
    with torch.no_grad():  # the latent space is fixed: encode once
        posteriors = [vae.encode(chunk).latent_dist for chunk in pool.split(256)]
        means = torch.cat([p.mean for p in posteriors])
        stds = torch.cat([p.std for p in posteriors])
        latent_std = means.std().item()
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, 50, args.steps)
    log = []
    vae.train()
    for step in range(1, args.steps + 1):
        index = torch.randint(0, len(pool), (args.batch,))
        z = means[index] + stds[index] * torch.randn_like(means[index])  # as the UNet's latents vary
        if args.latent_noise:
            z = z + smooth_latent_noise(z.shape, args.latent_noise, latent_std)
        target = pool[index]
        prediction = vae.decode(z).sample
        loss = F.l1_loss(prediction, target) + F.mse_loss(prediction, target) + gradient_loss(prediction, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step(), schedule.step(), optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == 1:
            log.append((step, loss.item()))
            print(f"step {step}/{args.steps} loss {loss.item():.4f}", flush=True)
    vae.eval()
    out = Path(args.out) if args.out else Path(args.model)
    if out != Path(args.model):
        shutil.copytree(args.model, out, dirs_exist_ok=True)
    folder = out / "vae"
    vae.save_pretrained(folder, safe_serialization=True)
    log_path = out / "training_log.json"
    record = json.loads(log_path.read_text()) if log_path.is_file() else {}
    record["decoder_finetune"] = {"args": vars(args), "loss": log, "minutes": (time.time() - started) / 60}
    log_path.write_text(json.dumps(record))
    print(f"wrote {folder} in {(time.time() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
