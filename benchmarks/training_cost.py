"""Training cost where the paper measures it: the upsampler step (Algorithm 1) vs a full UNet fine-tune step
on the real SD 2.1 architecture, same batch and stage size.

    python benchmarks/training_cost.py                 # batch 1, stage 256x256 (latent 32x32, pivot 128x128)
    python benchmarks/training_cost.py --size 128 --steps 1 --warmup 0 --cases upsamplers --out /tmp/check.md

SD 2.1's UNet and VAE from configs/ with random weights, float32, on the CPU; the text encoder has
the size of the released one (OpenCLIP ViT-H/14's text tower: 23 layers, width 1024), random weights. The
sizes are small on purpose: a full fine-tune of the 865M-parameter UNet holds weights, gradients and two
AdamW moments (about 14 GB) before any activation, so 256 px fits a 24 GiB machine. Each case runs in a
fresh process (`--case`) and reports seconds per step after `--warmup` untimed steps, the resident size
after the model was built, and the peak (ru_maxrss: the kernel's record of the process's largest resident
size, weights included).

Cases (the same rendered image and caption, t <= K = 0.5 T, v-prediction as SD 2.1):
- upsamplers: selfcascade.training.loop.train itself with nothing reused (SELFCASCADE_TRAIN_CACHE_MB=0): VAE
  encodes of the crop and its pivot, the caption, the pivot's encoder pass, the UNet with the residuals,
  backward into phi only, AdamW on phi's 6,460 parameters;
- upsamplers-reused: the same trainer when the crop and caption were seen before (images at the stage size):
  the frozen passes are skipped (selfcascade.training.features);
- full: VAE encode, caption, UNet forward, backward into every UNet weight, AdamW on all of them;
- full-reused: the same with the crop's latents and the caption's embeddings reused.
Writes the table to benchmarks/results/training_cost.md (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "results" / "training_cost.md"
CASES = ("upsamplers", "upsamplers-reused", "full", "full-reused")
GIB = 2**30


def build_sd21(folder: Path):
    """SD 2.1's UNet + VAE (random weights) with a text encoder of the released size."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    from benchmarks.real_architectures import TEXT_ENCODERS, build

    model = build("sd21", folder)
    tokenizer = model.pipeline.tokenizer
    config = CLIPTextConfig(vocab_size=len(tokenizer), max_position_embeddings=tokenizer.model_max_length,
                            **TEXT_ENCODERS["sd21"][0])
    torch.manual_seed(1)
    model.pipeline.text_encoder = CLIPTextModel(config).eval().requires_grad_(False)
    return model


def upsampler_steps(model, image: str, size: int, batch: int, count: int) -> list[float]:
    """Seconds of each step of the project's trainer (its events' timestamps)."""
    from selfcascade.training.loop import TrainingRequest, TrainingStarted, TrainingStep, train

    request = TrainingRequest(images=[image], size=(size, size), steps=count, batch=batch, strength=0.5,
                              out=str(Path(image).parent / "adapter"))
    seconds, last = [], None
    for event in train(request, model):
        now = time.perf_counter()
        if isinstance(event, TrainingStarted):
            last = now
        elif isinstance(event, TrainingStep):
            seconds.append(now - last)
            last = now
    return seconds


def full_steps(model, image: str, size: int, batch: int, count: int, reuse: bool) -> list[float]:
    """The ordinary diffusion loss at the stage size with every UNet weight trainable (no pivot)."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    from selfcascade.models.vae import encode_mean
    from selfcascade.training.data.images import TrainingImages
    from selfcascade.training.loop import diffusion_target

    data = TrainingImages([image], (size, size), model.size_multiple)
    unet = model.unet.requires_grad_(True).train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-5)
    scheduler = DDPMScheduler.from_config(model.scheduler_config)
    max_timestep = int(0.5 * scheduler.config.num_train_timesteps) - 1
    rng, generator, reused, seconds = random.Random(0), torch.Generator().manual_seed(0), None, []
    for _ in range(count):
        pixels, captions = data.batch(batch, rng)
        started = time.perf_counter()
        if reused is None or not reuse:
            with torch.no_grad():
                reused = (encode_mean(model.vae, pixels, tiled=False), model.encode_prompt(captions, "", guided=False))
        z0, conditioning = reused
        t = torch.randint(1, max_timestep + 1, (batch,), generator=generator)
        noise = torch.randn(z0.shape, generator=generator)
        prediction = model.predict_noise(scheduler.add_noise(z0, noise, t), t, conditioning)
        loss = F.mse_loss(prediction, diffusion_target(scheduler, z0, noise, t))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - started)
    return seconds


def measure(case: str, size: int, batch: int, steps: int, warmup: int, threads: int) -> dict:
    """In this (fresh) process: build, train `warmup + steps` steps, report times and memory."""
    import psutil
    import torch

    from selfcascade.adapters.upsampler import new_upsamplers
    from selfcascade.shapes.train_adapter import render_examples

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as scratch:
        model = build_sd21(Path(scratch))
        built = psutil.Process().memory_info().rss
        image = render_examples(Path(scratch) / "images", 1, size, seed=0)[0]
        if case.startswith("upsamplers"):
            trainable = sum(p.numel() for p in new_upsamplers(model.unet, model.name).parameters())
            seconds = upsampler_steps(model, image, size, batch, warmup + steps)
        else:
            trainable = sum(p.numel() for p in model.unet.parameters())
            seconds = full_steps(model, image, size, batch, warmup + steps, reuse=case == "full-reused")
    timed = seconds[warmup:]
    return {"case": case, "trainable": trainable, "seconds": sum(timed) / len(timed), "all_seconds": seconds,
            "built": built, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def run_case(case: str, args) -> dict | str:
    """One case in a fresh process (its own peak memory); the result, or the last line of its error."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    if case == "upsamplers":
        env["SELFCASCADE_TRAIN_CACHE_MB"] = "0"  # nothing reused: every frozen pass runs every step
    done = subprocess.run([sys.executable, __file__, "--case", case, "--size", str(args.size), "--batch",
                           str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
                           "--threads", str(args.threads)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["no output"])[-1][:160]
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict, args) -> str:
    lines = [f"Real SD 2.1 UNet + VAE (configs/), random weights, float32, CPU ({args.threads} thread(s)); "
             f"text encoder of the released size (random weights); batch {args.batch}, stage {args.size}x{args.size} "
             f"(latent {args.size // 8}x{args.size // 8}, pivot {args.size // 2}x{args.size // 2}); {args.steps} timed "
             f"step(s) after {args.warmup} warm-up step(s), each case in a fresh process. Peak = ru_maxrss "
             "(weights included).", "",
             "| step | trainable parameters | s / step | peak memory (GiB) | after building (GiB) | "
             "peak above building (GiB) |", "|---|---|---|---|---|---|"]
    for case in CASES:
        if case not in results:
            continue
        result = results[case]
        if isinstance(result, str):
            lines.append(f"| {case} | failed: {result} | | | | |")
            continue
        lines.append(f"| {case} | {result['trainable']:,} | {result['seconds']:.2f} | {result['peak'] / GIB:.2f} | "
                     f"{result['built'] / GIB:.2f} | {(result['peak'] - result['built']) / GIB:.2f} |")
    for ours, theirs in (("upsamplers", "full"), ("upsamplers-reused", "full-reused")):
        a, b = results.get(ours), results.get(theirs)
        if isinstance(a, dict) and isinstance(b, dict):
            lines.append(f"\n{ours} / {theirs}: time {a['seconds'] / b['seconds']:.2f}x, peak memory "
                         f"{a['peak'] / b['peak']:.2f}x (issue 11's goals: time <= 0.6x, memory <= 0.5x)")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="stage size in px (multiple of 64)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--case", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.size % 64 or args.steps < 1 or args.warmup < 0:
        parser.error("--size must be a multiple of 64, --steps at least 1, --warmup at least 0")
    if args.case:
        print(json.dumps(measure(args.case, args.size, args.batch, args.steps, args.warmup, args.threads)))
        return
    results = {}
    for case in args.cases.split(","):
        if case not in CASES:
            parser.error(f"unknown case {case!r}; choose from {', '.join(CASES)}")
        results[case] = run_case(case, args)
        print(results[case] if isinstance(results[case], str) else
              f"{case}: {results[case]['seconds']:.2f} s/step, peak {results[case]['peak'] / GIB:.2f} GiB", flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table(results, args))  # after every case: an interrupted run keeps its rows
    print("\n" + table(results, args))


if __name__ == "__main__":
    main()
