"""Train the embedded video default: a small MotionAdapter on top of the frozen embedded image model.

    nice -n 19 python -m selfcascade.shapes.train_motion --out selfcascade/assets/shapes-video --steps 1500

AnimateDiff's recipe (Guo et al. 2023, arXiv 2307.04725): the image UNet, VAE and text encoder stay frozen;
motion modules (temporal self-attention after each spatial block) are inserted with UNetMotionModel.from_unet2d
and are the only UNet weights that train, on clips of the shapes world in motion (selfcascade.shapes.motion).
The image model's vocabulary has no words for motion, so the five words "moving right/left/up/down" are added
to its tokenizer and their five token embeddings train too (every other embedding row is frozen).

Known limit, measured: the shipped model moves shapes, but the direction follows the initial noise, not the
prompt ("moving right" and "moving down" from one seed draw the same track). AnimateDiff's motion modules have
no text input, and the frozen tiny text encoder changes its output for the direction word by ~3%. Continuing
training (`--resume`) with the spatial cross-attention's key and value projections trainable
(`--train-cross-attention`, 1% of the UNet) and half of the samples from the noisier timesteps where only the
text can decide the track (`--high-noise-fraction 0.5`), 1200 steps each, did not change that. Neither did
giving the motion modules the prompt directly (`--text-conditioning`, selfcascade.models.motion_text) with the
motion words spread apart, the text encoder trainable, x0-weighted noisy steps and an auxiliary loss of naming
the direction (2000 steps; docs/video-model.md). The sampler supplies the direction instead:
selfcascade.diffusion.motion_steering steers the first stage's noisiest steps along it.
The shipped weights are the plain recipe (2400 steps) continued for 1500 steps with half of the samples from
the noisier timesteps and those weighted as x0 errors up to 5x (`--resume selfcascade/assets/shapes-video
--high-noise-fraction 0.5 --x0-weight-max 5`, 15.6 min on 2 threads): the noisy steps decide the background,
and weighting them made the frames agree on it (flicker 9.6 -> 0.8 on 16 videos at 64 px).
Writes an AnimateDiffPipeline folder (loaded through the same from_pretrained path as hub models) and
training_log.json beside it.
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
from diffusers import AnimateDiffPipeline, MotionAdapter, StableDiffusionPipeline, UNetMotionModel
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import compute_snr

from selfcascade.diffusion.anchor import EMBEDDED_ANCHOR_SIGMA
from selfcascade.models.folder_settings import write_folder_settings
from selfcascade.models.motion_text import MotionTextConditioning, attach, attach_saved, detach_for_saving
from selfcascade.models.names import EMBEDDED_MODEL
from selfcascade.models.video import contiguous_motion_inputs
from selfcascade.shapes.motion import DIRECTIONS, MOTION_WORDS, motion_caption, random_clip_scene, render_clip
from selfcascade.shapes.world import VOCABULARY

IMAGE_MODEL = EMBEDDED_MODEL
CAPTION_DROP = 0.1  # empty captions, so classifier-free guidance keeps an unconditional model
STILL_FRACTION = 0.2  # clips without motion ("a blue square"): the shape stays put


def build_adapter(unet) -> MotionAdapter:
    """A MotionAdapter sized for the embedded UNet (0.7M parameters; docs/video.md, The embedded video model)."""
    return MotionAdapter(block_out_channels=tuple(unet.config.block_out_channels),
                         motion_layers_per_block=unet.config.layers_per_block, motion_num_attention_heads=4,
                         motion_norm_num_groups=8, motion_max_seq_length=32)


def adapter_from(unet: UNetMotionModel, like: MotionAdapter) -> MotionAdapter:
    """The trained motion modules as a MotionAdapter (what UNetMotionModel.save_motion_modules does)."""
    adapter = MotionAdapter.from_config(like.config)
    adapter.load_state_dict({key: value for key, value in unet.state_dict().items() if "motion_modules" in key})
    return adapter


def cross_attention_projections(unet) -> list[torch.nn.Parameter]:
    """Make the spatial cross-attention's key and value projections trainable; returns their parameters."""
    chosen = []
    for name, module in unet.named_modules():
        if name.endswith("attn2") and "motion_modules" not in name:
            for projection in (module.to_k, module.to_v):
                projection.requires_grad_(True)
                chosen.extend(projection.parameters())
    return chosen


def add_motion_words(tokenizer, text_encoder) -> list[int]:
    """Add the motion words as whole tokens; their embeddings start at the mean of the existing words'."""
    tokenizer.add_tokens([word for word in MOTION_WORDS if word not in tokenizer.get_vocab()])
    old = text_encoder.get_input_embeddings().weight.shape[0]
    text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    weight = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        weight[old:] = weight[:old].mean(0)
    return list(range(old, len(tokenizer)))


def token_ids(tokenizer, captions: list[str]) -> torch.Tensor:
    """The captions as padded token ids, the way the pipelines encode prompts."""
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


@torch.no_grad()
def spread_motion_words(tokenizer, text_encoder, seed: int) -> None:
    """Give each motion word its own embedding: the mean word plus a random offset as long as a typical word's
    (the median over the image vocabulary's words, not over the letters that only spell unknown words).

    Started at the mean, as `add_motion_words` does, the five rows stayed 0.1 apart (colour words are 0.5
    apart) and the frozen text encoder's outputs for "right" and "left" differed by 3%: nothing downstream
    could learn from a difference that small, so nothing pushed the rows apart."""
    embeddings = text_encoder.get_input_embeddings().weight
    ids = tokenizer.convert_tokens_to_ids(list(MOTION_WORDS))
    words = tokenizer.convert_tokens_to_ids([f"{word}</w>" for word in VOCABULARY])
    generator = torch.Generator().manual_seed(seed)
    mean = embeddings[words].mean(0)
    typical = (embeddings[words] - mean).norm(dim=1).median()
    for index in ids:
        offset = torch.randn(embeddings.shape[1], generator=generator)
        embeddings[index] = mean + offset / offset.norm() * typical


@torch.no_grad()
def render_dataset(vae, count: int, frames: int, seed: int) -> tuple[torch.Tensor, list]:
    """(count, C, F, h, w) latents of random clips (posterior means, scaled) and their (scene, direction)."""
    rng = random.Random(seed)
    clips, latents = [], []
    for _ in range(count):
        direction = None if rng.random() < STILL_FRACTION else rng.choice(list(DIRECTIONS))
        scene = random_clip_scene(rng, None, direction)
        clips.append((scene, direction))
        pixels = np.stack([np.asarray(frame) for frame in render_clip(scene, direction, frames)])
        pixels = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1
        latent = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
        latents.append(latent.permute(1, 0, 2, 3))  # (C, F, h, w)
    return torch.stack(latents), clips


def starting_models(args):
    """(vae, text encoder, tokenizer, scheduler, motion UNet, MotionAdapter, motion-word token ids): a saved
    video model to continue (`--resume`), else the image model with new motion modules. Only the motion
    modules are left trainable."""
    if args.resume:
        video = AnimateDiffPipeline.from_pretrained(str(args.resume))
        for name, parameter in video.unet.named_parameters():  # freeze_unet2d_params, for a loaded model
            parameter.requires_grad_("motion_modules" in name)
        return (video.vae.eval(), video.text_encoder, video.tokenizer, video.scheduler, video.unet,
                video.motion_adapter, video.tokenizer.convert_tokens_to_ids(list(MOTION_WORDS)))
    image = StableDiffusionPipeline.from_pretrained(str(args.image_model), safety_checker=None,
                                                   requires_safety_checker=False)
    new_ids = add_motion_words(image.tokenizer, image.text_encoder)
    adapter = build_adapter(image.unet)
    unet = UNetMotionModel.from_unet2d(image.unet, adapter)
    unet.freeze_unet2d_params()  # the image UNet stays frozen: only the motion modules (and K/V if asked) train
    return image.vae.eval(), image.text_encoder, image.tokenizer, image.scheduler, unet, adapter, new_ids


def text_conditioning(unet, text_encoder, tokenizer, clips, args) -> MotionTextConditioning | None:
    """The motion modules' text input: the resumed model's, else a new one when asked (else None), standardised
    on the captions of the training clips."""
    conditioning = attach_saved(unet, args.resume) if args.resume else None
    if conditioning is None and args.text_conditioning:
        conditioning = MotionTextConditioning.for_unet(unet, text_encoder.config.hidden_size)
        rng = random.Random(args.seed + 2)
        captions = [motion_caption(scene, direction, rng) for scene, direction in clips]
        tokens = token_ids(tokenizer, captions)
        with torch.no_grad():
            conditioning.standardise_on(text_encoder(tokens)[0])
        conditioning = attach(unet, conditioning)
    if conditioning is not None:
        conditioning.requires_grad_(True)
    return conditioning


def direction_naming_loss(namer, conditioning, clips, index, dropped, frames: int) -> torch.Tensor:
    """Cross-entropy of naming each clip's direction (or none: still clips, dropped captions) from the prompt
    vector of the UNet call that just ran. An auxiliary loss: it makes the prompt vector carry the direction
    from the first steps (the motion words differ by a few % in the text encoder's output). Measured: the vector
    then names the direction within 100 steps, yet in 2000 steps the diffusion loss still did not come to use
    it (docs/video-model.md)."""
    names = list(DIRECTIONS)
    labels = torch.tensor([len(names) if drop or clips[i][1] is None else names.index(clips[i][1])
                           for i, drop in zip(index.tolist(), dropped)])
    return F.cross_entropy(namer(conditioning.last_prompt_vectors[::frames]), labels)


OPPOSITE = {"right": "left", "left": "right", "up": "down", "down": "up"}


def direction_probe(latents, clips, args, count: int = 8):
    """A measure of whether the model reads the direction: on `count` fixed moving clips at fixed noisy
    timesteps (the noisiest 30%, where the track is still undecided), the mean loss with the opposite direction
    in the caption minus the loss with the right one, as x0 errors (the eps loss / SNR). 0: the direction
    word is ignored."""
    moving = [i for i, (_, direction) in enumerate(clips) if direction][:count]
    if not moving or args.probe_every <= 0:
        return None
    generator = torch.Generator().manual_seed(123)
    z0 = latents[moving]
    noise = torch.randn(z0.shape, generator=generator)
    t = torch.randint(700, 1000, (len(moving),), generator=generator)
    right = [motion_caption(clips[i][0], clips[i][1]) for i in moving]
    wrong = [motion_caption(clips[i][0], OPPOSITE[clips[i][1]]) for i in moving]

    @torch.no_grad()
    def gap(unet, tokenizer, text_encoder, scheduler) -> float:
        unet.eval()
        zt = scheduler.add_noise(z0, noise, t)
        losses = []
        for captions in (wrong, right):
            tokens = token_ids(tokenizer, captions)
            text = text_encoder(tokens)[0].repeat_interleave(z0.shape[2], 0)
            error = F.mse_loss(unet(zt, t, encoder_hidden_states=text).sample, noise, reduction="none")
            losses.append((error.mean(dim=(1, 2, 3, 4)) / compute_snr(scheduler, t)).mean().item())  # as x0 errors
        unet.train()
        return losses[0] - losses[1]

    return gap


def train(args) -> dict:
    torch.manual_seed(args.seed), np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.time()
    vae, text_encoder, tokenizer, scheduler, unet, adapter, new_ids = starting_models(args)
    if args.spread_motion_words:
        spread_motion_words(tokenizer, text_encoder, args.seed)
    vae.requires_grad_(False)
    text_encoder.requires_grad_(False)
    embeddings = text_encoder.get_input_embeddings().weight
    embeddings.requires_grad_(True)
    keep = torch.zeros_like(embeddings[:, :1])
    keep[new_ids] = 1
    embeddings.register_hook(lambda grad: grad * keep)  # only the motion words' rows learn
    contiguous_motion_inputs(unet)
    cross_attention = cross_attention_projections(unet) if args.cross_attention else []
    motion_parameters = [p for name, p in unet.named_parameters() if p.requires_grad and "motion_modules" in name]
    log: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "loss": [],
                 "trainable_motion_parameters": sum(p.numel() for p in motion_parameters),
                 "trainable_cross_attention_parameters": sum(p.numel() for p in cross_attention),
                 "trainable_word_embeddings": len(new_ids) * embeddings.shape[1]}
    print(f"motion parameters: {log['trainable_motion_parameters']:,}; rendering {args.clips} clips", flush=True)
    latents, clips = render_dataset(vae, args.clips, args.frames, args.seed)
    log["data_seconds"] = round(time.time() - started, 1)
    conditioning = text_conditioning(unet, text_encoder, tokenizer, clips, args)
    text_parameters = list(text_encoder.parameters()) if args.text_encoder_lr_scale > 0 else []
    if text_parameters:
        text_encoder.requires_grad_(True)
    log["trainable_motion_text_parameters"] = sum(p.numel() for p in conditioning.parameters()) if conditioning else 0
    log["trainable_text_encoder_parameters"] = sum(p.numel() for p in text_parameters)

    groups = [{"params": motion_parameters, "weight_decay": 1e-2}, {"params": [embeddings], "weight_decay": 0.0}]
    if cross_attention:
        groups.append({"params": cross_attention, "weight_decay": 0.0, "lr": args.lr * args.cross_attention_lr_scale})
    if conditioning:
        groups.append({"params": list(conditioning.parameters()), "weight_decay": 0.0})
    if text_parameters:  # the embedding rows are already in a group (with their hook)
        others = [p for p in text_parameters if p is not embeddings]
        groups.append({"params": others, "weight_decay": 0.0, "lr": args.lr * args.text_encoder_lr_scale})
    namer = None
    if conditioning and args.direction_loss > 0:  # discarded after training: only its gradient matters
        namer = torch.nn.Linear(conditioning.config.hidden_dim, len(DIRECTIONS) + 1)
        groups.append({"params": list(namer.parameters()), "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    trained = [p for group in groups for p in group["params"]]
    probe = direction_probe(latents, clips, args)
    schedule = get_cosine_schedule_with_warmup(optimizer, min(100, args.steps // 10), args.steps)
    rng = random.Random(args.seed + 1)
    unet.train()
    for step in range(1, args.steps + 1):
        index = torch.randint(0, len(latents), (args.batch,))
        z0 = latents[index]
        dropped = [rng.random() < CAPTION_DROP for _ in range(args.batch)]
        captions = ["" if drop else motion_caption(*clips[i], rng) for i, drop in zip(index.tolist(), dropped)]
        tokens = token_ids(tokenizer, captions)
        text = text_encoder(tokens)[0].repeat_interleave(args.frames, 0)  # one per frame (AnimateDiff)
        noise = torch.randn_like(z0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch,))
        late = torch.rand(args.batch) < args.high_noise_fraction  # where only the text can decide the direction
        t = torch.where(late, t // 2 + scheduler.config.num_train_timesteps // 2, t)
        zt = scheduler.add_noise(z0, noise, t)
        prediction = unet(zt, t, encoder_hidden_states=text).sample
        snr = compute_snr(scheduler, t)
        weight = torch.clamp(snr, max=5.0) / snr  # Min-SNR-5, as for the image model
        if args.x0_weight_max > 1:  # the noisiest steps, where the direction is decided, weighted as x0 errors
            weight = torch.where(snr < 1, torch.clamp(1 / snr, max=args.x0_weight_max), weight)
        loss = (weight * F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3, 4))).mean()
        if namer is not None:
            loss = loss + args.direction_loss * direction_naming_loss(namer, conditioning, clips, index, dropped,
                                                                      args.frames)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step(), schedule.step(), optimizer.zero_grad(set_to_none=True)
        if step % 25 == 0 or step == args.steps:
            log["loss"].append((step, round(loss.item(), 5)))
            print(f"step {step}/{args.steps} loss {loss.item():.4f} {time.time() - started:.0f} s", flush=True)
        if probe and (step % args.probe_every == 0 or step == args.steps):
            gap = probe(unet, tokenizer, text_encoder, scheduler)
            log.setdefault("direction_gap", []).append((step, float(f"{gap:.3g}")))
            print(f"step {step}: direction gap {gap:+.3g} (loss with the opposite direction minus the right one)",
                  flush=True)

    unet.eval()
    text_encoder.requires_grad_(False)
    detach_for_saving(unet)
    pipeline = AnimateDiffPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   motion_adapter=adapter_from(unet, adapter), scheduler=scheduler)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    pipeline.save_pretrained(out, safe_serialization=True)
    write_folder_settings(out, pivot_anchor_sigma=EMBEDDED_ANCHOR_SIGMA)  # measured on the shapes world
    if conditioning:
        conditioning.save_pretrained(out / "motion_text", safe_serialization=True)
    log["minutes"] = round((time.time() - started) / 60, 2)
    (out / "training_log.json").write_text(json.dumps(log, indent=1))
    print(f"wrote {out} in {log['minutes']:.1f} min")
    return log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="selfcascade/assets/shapes-video")
    parser.add_argument("--image-model", default=str(IMAGE_MODEL))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--clips", type=int, default=1200, help="rendered training clips")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", default=None, help="continue from this saved video model folder")
    parser.add_argument("--train-cross-attention", dest="cross_attention", action="store_true",
                        help="also train the spatial cross-attention's K/V (default: frozen, AnimateDiff's recipe)")
    parser.add_argument("--cross-attention-lr-scale", type=float, default=0.3,
                        help="learning rate of the pretrained K/V relative to --lr")
    parser.add_argument("--high-noise-fraction", type=float, default=0.0,
                        help="share of samples drawn from the noisier half of the timesteps, where the layout and "
                             "the direction are decided from the text alone")
    parser.add_argument("--text-conditioning", action="store_true",
                        help="give the motion modules the prompt (selfcascade.models.motion_text); kept when --resume "
                             "starts from a model that has it")
    parser.add_argument("--text-encoder-lr-scale", type=float, default=0.0,
                        help="train the (video model's own copy of the) text encoder at this fraction of --lr; "
                             "0 keeps it frozen but for the motion words' embeddings")
    parser.add_argument("--spread-motion-words", action="store_true",
                        help="re-start the motion words' embeddings apart from each other (see spread_motion_words)")
    parser.add_argument("--x0-weight-max", type=float, default=1.0,
                        help="weight samples with SNR < 1 by 1/SNR (their x0 error) up to this; 1: Min-SNR-5 only")
    parser.add_argument("--direction-loss", type=float, default=0.0,
                        help="weight of the auxiliary loss of naming the direction from the prompt vector")
    parser.add_argument("--probe-every", type=int, default=100,
                        help="steps between direction-gap probes (0: never)")
    parser.add_argument("--threads", type=int, default=1,
                        help="1: on 2 busy shared cores, 2 OpenMP threads ran 10x slower (8 s vs 0.8 s a step)")
    train(parser.parse_args(argv))


if __name__ == "__main__":
    main()
