"""Train the embedded default model from scratch on renders of the shapes world; write a diffusers folder.

    python -m selfcascade.shapes.train_default --out selfcascade/assets/shapes-model

Stable-Diffusion-shaped on purpose (AutoencoderKL with 4x down-sampling, a cross-attention
UNet2DConditionModel, a CLIP text encoder and tokenizer, a scheduler config), so that the embedded model and
the hub models share one loading and sampling path. Seeded; about 50 minutes on 2 CPU cores:
  1. render a fixed data set of 64 px scenes;
  2. train the VAE (on 32 px crops: it is purely convolutional, and crops are 4x cheaper);
  3. encode the data set once and train UNet + text encoder on the cached latents (epsilon loss with
     Min-SNR-5 weighting, 10% empty captions for classifier-free guidance, EMA of the weights).

`--resume DIR` continues step 3 from a model folder (its VAE kept) on freshly rendered data of `--seed`;
with `--refine-vae` it first fine-tunes that VAE (encoder and decoder) with the edge- and colour-weighted
loss of `vae_loss.py`, scales the new latents to unit variance and continues the UNet on them.
`--latent-channels` sizes a new VAE's latent, `--latent-scale 2` halves its down-sampling (a 32 x 32 latent
at 64 px), `--snr-shift` shifts the noise schedule for such a finer latent and `--zoom-share` adds close-up
crops of larger scenes at low noise (zoom_crops.py). These were measured against
the shipped model in docs/experiments.md ("What limits every cascade here"); none is in the shipped weights.
`--canvases` trains the UNet on several canvas sizes of about 64x64 pixels (multi-aspect buckets, as SDXL
does), so that non-square targets start from a stage 0 the model knows (docs/results.md, "Non-square images").
`--vae-from DIR` skips step 2 and keeps DIR's VAE as it is (its latent space and scaling factor), so that a
UNet trained from scratch (e.g. on several canvases) is compared with the shipped one on the same latents.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel, compute_snr
from tqdm.auto import tqdm
from transformers import CLIPTextConfig, CLIPTextModel

from selfcascade.diffusion.anchor import EMBEDDED_ANCHOR_SIGMA
from selfcascade.diffusion.consensus import EMBEDDED_CONSENSUS
from selfcascade.models.folder_settings import write_folder_settings
from selfcascade.shapes.tokenizer import build_tokenizer
from selfcascade.shapes.vae_loss import reconstruction_loss
from selfcascade.shapes.world import caption, random_scene, render
from selfcascade.shapes.zoom_crops import zoom_crops

BASE_SIZE = 64
CAPTION_DROP = 0.1  # empty captions, so classifier-free guidance has an unconditional model


def build_vae(latent_channels: int = 4, latent_scale: int = 4) -> AutoencoderKL:
    """`latent_scale` 4 (the shipped VAE: 3 blocks, 2 down-samplings) or 2 (2 blocks: a 32 x 32 latent at 64 px)."""
    blocks = {4: 3, 2: 2}[latent_scale]
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,  # blocks - 1 down-samplings
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(32, 64, 64)[:blocks],
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=16,
        sample_size=BASE_SIZE,
        mid_block_add_attention=False,  # convolutional only: decodes any size the same way
    )


def build_unet(text_width: int, latent_channels: int = 4, latent_scale: int = 4) -> UNet2DConditionModel:
    """On a 32 x 32 latent (`latent_scale` 2) one more, narrow level in front, so that the deep levels see the
    same 8 x 8 and 4 x 4 maps as on the 16 x 16 latent (about 1.4x the training step, not 4x)."""
    outer = (16,) if latent_scale == 2 else ()
    return UNet2DConditionModel(
        sample_size=BASE_SIZE // latent_scale,
        in_channels=latent_channels,
        out_channels=latent_channels,
        block_out_channels=outer + (32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * len(outer)
        + ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D") + ("UpBlock2D",) * len(outer),
        cross_attention_dim=text_width,
        attention_head_dim=4,
        norm_num_groups=8,
    )


def build_text_encoder(vocab_size: int, max_length: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=max_length,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return CLIPTextModel(config)


def render_dataset(count: int, seed: int, size: tuple[int, int] = (BASE_SIZE, BASE_SIZE)) -> tuple[torch.Tensor, list]:
    rng = random.Random(seed)
    scenes = [random_scene(rng, aspect=size[0] / size[1]) for _ in range(count)]
    pixels = np.stack([np.asarray(render(s, size)) for s in tqdm(scenes, desc=f"render data {size[0]}x{size[1]}")])
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1
    return images, scenes


def parse_canvases(text: str) -> list[tuple[int, int]]:
    """'64x64,96x48' -> [(64, 64), (96, 48)]: the training canvases (a size listed twice gets twice the share)."""
    canvases = []
    for item in text.split(","):
        width, height = (int(v) for v in item.lower().split("x"))
        if width % 16 or height % 16 or not 32 <= width * height <= 2 * BASE_SIZE**2:
            raise SystemExit(f"canvas {item}: sides must be multiples of 16 px, about {BASE_SIZE}x{BASE_SIZE} pixels")
        canvases.append((width, height))
    return canvases


def train_vae(vae: AutoencoderKL, images: torch.Tensor, steps: int, batch: int, log: dict, lr: float = 1e-3,
              warmup: int = 100, edge_weight: float = 0.0, colour_weight: float = 0.0) -> None:
    """Encoder and decoder together, on 32 px crops, with `vae_loss.reconstruction_loss`."""
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, warmup, steps)
    vae.train()
    bar = tqdm(range(steps), desc="vae")
    for step in bar:
        index = torch.randint(0, len(images), (batch,))
        y, x = np.random.randint(0, BASE_SIZE // 2 + 1, size=2) // 4 * 4  # crops aligned to the latent grid
        crop = images[index, :, y : y + BASE_SIZE // 2, x : x + BASE_SIZE // 2]
        posterior = vae.encode(crop).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        loss = reconstruction_loss(reconstruction, crop, edge_weight, colour_weight)
        loss = loss + 1e-6 * posterior.kl().mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step(), schedule.step(), optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            log["vae"].append((step, loss.item()))
    vae.eval()


@torch.no_grad()
def encode_dataset(vae: AutoencoderKL, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    means, stds = [], []
    for chunk in tqdm(images.split(256), desc="encode data"):
        posterior = vae.encode(chunk).latent_dist
        means.append(posterior.mean), stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


def noise_schedule(snr_shift: float = 1.0) -> DDPMScheduler:
    """Stable Diffusion's scaled-linear schedule, its signal-to-noise ratio divided by `snr_shift` at every t.

    A latent with twice the pixels per side keeps more of its low frequencies at the same noise level
    (Hoogeboom et al., "simple diffusion", ICML 2023, Sec. 3.1: shift the log-SNR by 2 log(side ratio)); at
    t = T the training latents still hold their layout and background, which sampling, starting from pure
    noise, does not. The shifted betas are stored in the scheduler's config (`trained_betas`), so every
    scheduler that loads the folder uses them."""
    base = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False, steps_offset=1)
    if snr_shift == 1.0:
        return DDPMScheduler(**base)
    alpha_bar = DDPMScheduler(**base).alphas_cumprod.double()
    snr = alpha_bar / (1 - alpha_bar) / snr_shift
    shifted = snr / (1 + snr)
    betas = 1 - shifted / torch.cat([shifted.new_ones(1), shifted[:-1]])
    return DDPMScheduler(**base, trained_betas=[float(b) for b in betas])


def train_denoiser(unet, text_encoder, tokenizer, buckets, steps, batch, seed, log, lr=1e-3,
                   snr_shift: float = 1.0, zoom=None) -> tuple:
    """`buckets`: [((latent means, stds), scenes)] per canvas size; each step's batch comes from one bucket,
    drawn in proportion to its images (multi-aspect training: the UNet learns non-square canvases too).
    `zoom`: ((means, stds), scenes, share, max_t): that share of the steps trains on close-up crops
    (zoom_crops.py) at timesteps below max_t only."""
    scheduler = noise_schedule(snr_shift)
    parameters = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-2)
    schedule = get_cosine_schedule_with_warmup(optimizer, 200, steps)
    ema_unet = EMAModel(unet.parameters(), decay=0.9995, use_ema_warmup=True, power=2 / 3)
    ema_text = EMAModel(text_encoder.parameters(), decay=0.9995, use_ema_warmup=True, power=2 / 3)
    rng = random.Random(seed + 1)
    weights = [len(scenes) for _, scenes in buckets]
    unet.train(), text_encoder.train()
    bar = tqdm(range(steps), desc="unet+text")
    for step in bar:
        # One canvas draws nothing here, so a default run repeats the random stream of the shipped weights.
        (means, stds), scenes = rng.choices(buckets, weights)[0] if len(buckets) > 1 else buckets[0]
        max_t = scheduler.config.num_train_timesteps
        if zoom is not None and rng.random() < zoom[2]:  # no draw without zoom: default runs repeat exactly
            (means, stds), scenes, _, max_t = zoom
        index = torch.randint(0, len(means), (batch,))
        z0 = means[index] + stds[index] * torch.randn_like(means[index])
        captions = ["" if rng.random() < CAPTION_DROP else caption(scenes[i], rng) for i in index.tolist()]
        tokens = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                           truncation=True, return_tensors="pt").input_ids
        noise = torch.randn_like(z0)
        t = torch.randint(0, max_t, (batch,))
        zt = scheduler.add_noise(z0, noise, t)
        prediction = unet(zt, t, text_encoder(tokens)[0]).sample
        snr = compute_snr(scheduler, t)
        weight = torch.clamp(snr, max=5.0) / snr  # Min-SNR-5 (Hang et al. 2023) for epsilon targets
        loss = (weight * F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step(), schedule.step(), optimizer.zero_grad(set_to_none=True)
        ema_unet.step(unet.parameters()), ema_text.step(text_encoder.parameters())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            log["unet"].append((step, loss.item()))
    ema_unet.copy_to(unet.parameters()), ema_text.copy_to(text_encoder.parameters())
    unet.eval(), text_encoder.eval()
    return scheduler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="selfcascade/assets/shapes-model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=int, default=24_000, help="number of rendered training images")
    parser.add_argument("--vae-steps", type=int, default=1800)
    parser.add_argument("--unet-steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of UNet + text encoder")
    parser.add_argument("--resume", help="continue training the UNet and text encoder of this model folder "
                        "(its VAE is kept), on freshly rendered data of --seed; writes --out")
    parser.add_argument("--refine-vae", action="store_true", help="with --resume: first fine-tune the folder's "
                        "VAE (encoder and decoder, --vae-steps at --vae-lr), then continue the UNet on its latents")
    parser.add_argument("--vae-from", help="a new UNet and text encoder (from scratch) on the VAE of this model "
                        "folder, kept as it is (same latent space)")
    parser.add_argument("--vae-lr", type=float, default=1e-3)
    parser.add_argument("--vae-edge-weight", type=float, default=0.0, help="extra loss weight near edges "
                        "(selfcascade/shapes/vae_loss.py)")
    parser.add_argument("--vae-colour-weight", type=float, default=0.0, help="loss weight of each 4x4 cell's "
                        "mean colour")
    parser.add_argument("--canvases", default=f"{BASE_SIZE}x{BASE_SIZE}", help="training canvas sizes, e.g. "
                        "64x64,64x64,96x48,48x96 (--data split equally; a size listed twice gets twice the share)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latent-channels", type=int, default=4, help="channels of the VAE's latent (new model)")
    parser.add_argument("--snr-shift", type=float, default=1.0, help="divide the noise schedule's SNR by this "
                        "(4 for a 32 x 32 latent: simple diffusion's resolution shift; "
                        "resume a shifted folder with its shift)")
    parser.add_argument("--zoom-share", type=float, default=0.0, help="share of the UNet's steps on close-up "
                        "crops of scenes rendered 2x and 4x larger (zoom_crops.py), at low noise only")
    parser.add_argument("--zoom-max-t", type=int, default=400, help="close-up crops train timesteps below this")
    parser.add_argument("--zoom-data", type=int, default=8000, help="number of close-up crops")
    parser.add_argument("--latent-scale", type=int, choices=(2, 4), default=4, help="the new VAE's down-sampling: "
                        "4 (a 16 x 16 latent at 64 px, the shipped model) or 2 (32 x 32)")
    args = parser.parse_args(argv)
    if args.refine_vae and not args.resume:
        parser.error("--refine-vae fine-tunes the VAE of a trained model: give that folder with --resume")
    if args.vae_from and args.resume:
        parser.error("--resume keeps its own VAE; --vae-from is for a UNet trained from scratch")
    torch.manual_seed(args.seed), np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    started = time.time()
    log: dict = {"args": vars(args), "vae": [], "unet": []}
    if args.resume:
        log["resumed_from"] = json.loads((Path(args.resume) / "training_log.json").read_text())

    vae_settings = dict(lr=args.vae_lr, edge_weight=args.vae_edge_weight, colour_weight=args.vae_colour_weight)
    tokenizer = build_tokenizer(out / "tokenizer")
    canvases = parse_canvases(args.canvases)
    rendered = [render_dataset(args.data // len(canvases), args.seed + n, size) for n, size in enumerate(canvases)]
    images = next((pixels for (pixels, _), size in zip(rendered, canvases) if size[0] == size[1]), rendered[0][0])
    if args.resume:
        vae = AutoencoderKL.from_pretrained(args.resume, subfolder="vae").eval()
        if args.refine_vae:
            train_vae(vae, images, args.vae_steps, 32, log, **vae_settings, warmup=50)
        text_encoder = CLIPTextModel.from_pretrained(args.resume, subfolder="text_encoder")
        unet = UNet2DConditionModel.from_pretrained(args.resume, subfolder="unet")
    else:
        if args.vae_from:
            vae = AutoencoderKL.from_pretrained(args.vae_from, subfolder="vae").eval()
            log["vae_from"] = str(args.vae_from)
        else:
            vae = build_vae(args.latent_channels, args.latent_scale)
            train_vae(vae, images, args.vae_steps, 32, log, **vae_settings)
        text_encoder = build_text_encoder(len(tokenizer), tokenizer.model_max_length)
        latent_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        unet = build_unet(text_encoder.config.hidden_size, vae.config.latent_channels, latent_scale)
    latents = [encode_dataset(vae, pixels) for pixels, _ in rendered]
    if args.refine_vae or not (args.resume or args.vae_from):  # a new latent space: scale it to unit variance again
        vae.register_to_config(scaling_factor=float(1.0 / latents[0][0].std()))
    scale = vae.config.scaling_factor
    buckets = [((means * scale, stds * scale), scenes) for (means, stds), (_, scenes) in zip(latents, rendered)]
    zoom = None
    if args.zoom_share > 0:
        crops, crop_scenes = zoom_crops(args.zoom_data, args.seed + 100)
        means, stds = encode_dataset(vae, crops)
        zoom = ((means * scale, stds * scale), crop_scenes, args.zoom_share, args.zoom_max_t)
    scheduler = train_denoiser(unet, text_encoder, tokenizer, buckets, args.unet_steps, args.batch,
                               args.seed, log, lr=args.lr, snr_shift=args.snr_shift, zoom=zoom)

    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipeline.save_pretrained(out, safe_serialization=True)
    write_folder_settings(out, pivot_anchor_sigma=EMBEDDED_ANCHOR_SIGMA,  # measured on the shapes world
                          pivot_consensus=EMBEDDED_CONSENSUS)
    log["minutes"] = (time.time() - started) / 60
    (out / "training_log.json").write_text(json.dumps(log))
    print(f"wrote {out} in {log['minutes']:.1f} min")


if __name__ == "__main__":
    main()
