"""The real SD 2.1 and SDXL UNet + VAE layouts (configs/, random weights) through every mode on the
CPU, and the memory plan for 2048² and 4096² on a GPU.

    python benchmarks/real_architectures.py                     # both, about 20-40 minutes on 2 CPU cores
    python benchmarks/real_architectures.py --archs sd21 --modes tuning-free

Each architecture is built as a diffusers pipeline: its UNet and VAE from the configs, random weights,
float32, and tiny random CLIP text encoders whose hidden sizes and projection match the UNet's
cross_attention_dim (and SDXL's pooled-embedding input), since no weights can be downloaded here. Every
mode then runs one denoising step per stage, no guidance, at the base latent size: stage 0 at the base
size, stage 1 one size-multiple taller (so the pivot is up-sampled, re-noised, and in the tuned mode the
upsamplers attach to the real skip layout). Images must come out finite (the NaN/Inf check is part of every
run). Random weights make the pictures noise: this checks that the code runs on the real layer layout.

Then selfcascade.models.memory's plan for 2048² and 4096² in float16 on a GPU (the VAE in float32, as its
force_upcast asks), with and without VAE tiling and with model CPU offload, for docs/gpu.md.
Writes benchmarks/results/real_architectures.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection  # noqa: E402

from selfcascade.adapters.files import save_adapter  # noqa: E402
from selfcascade.adapters.upsampler import new_upsamplers  # noqa: E402
from selfcascade.cascade.estimate import memory_plan  # noqa: E402
from selfcascade.cascade.pipeline import run  # noqa: E402
from selfcascade.cascade.request import MODES, GenerationRequest  # noqa: E402
from selfcascade.models.memory import GIB, module_bytes, plan_memory  # noqa: E402
from selfcascade.models.placement import attention_kinds, use_sdpa  # noqa: E402
from selfcascade.models.sdxl import StableDiffusionXLModel  # noqa: E402
from selfcascade.models.stable_diffusion import StableDiffusionModel  # noqa: E402
from selfcascade.shapes.tokenizer import build_tokenizer  # noqa: E402

CONFIGS = ROOT / "configs"
OUT = ROOT / "benchmarks" / "results" / "real_architectures.md"
ARCHS = {"sd21": "SD 2.1", "sdxl": "SDXL"}


def _text_encoder(tokenizer, hidden: int, projection: int | None = None):
    """A one-layer random CLIP text encoder of the real hidden size (and projection, for SDXL's second)."""
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=64,
                            num_hidden_layers=1, num_attention_heads=8,
                            max_position_embeddings=tokenizer.model_max_length, projection_dim=projection or hidden)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def build(arch: str, folder: Path):
    """The DiffusionModel of `arch` ('sd21' or 'sdxl') with random weights, as the loader would wrap it."""
    torch.manual_seed(0)
    tokenizer = build_tokenizer(folder / f"tokenizer-{arch}")
    unet = UNet2DConditionModel.from_config(json.loads((CONFIGS / f"{arch}_unet.json").read_text()))
    vae_config = json.loads((CONFIGS / "sd_vae.json").read_text())
    if arch == "sdxl":  # configs/README.md: same layout, SDXL's scaling and sample size
        vae_config.update(scaling_factor=0.13025, sample_size=1024)
        first, second = 768, unet.config.cross_attention_dim - 768
        pipeline = StableDiffusionXLPipeline(
            vae=AutoencoderKL.from_config(vae_config), text_encoder=_text_encoder(tokenizer, first),
            text_encoder_2=_text_encoder(tokenizer, second, projection=second), tokenizer=tokenizer,
            tokenizer_2=tokenizer, unet=unet,
            scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                             steps_offset=1, timestep_spacing="leading"))
        model = StableDiffusionXLModel(pipeline, "SDXL (random weights)")
    else:
        pipeline = StableDiffusionPipeline(
            vae=AutoencoderKL.from_config(vae_config),
            text_encoder=_text_encoder(tokenizer, unet.config.cross_attention_dim), tokenizer=tokenizer, unet=unet,
            scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                    steps_offset=1, prediction_type="v_prediction", clip_sample=False,
                                    set_alpha_to_one=False),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        model = StableDiffusionModel(pipeline, "SD 2.1 (random weights)")
    use_sdpa(pipeline)
    return model


def run_modes(model, modes: list[str], folder: Path) -> list[str]:
    """One step per stage at the base latent size in each mode; a table row per mode."""
    width, height = model.base_size[0], model.base_size[1] + model.size_multiple
    adapter = save_adapter(new_upsamplers(model.unet, model.name), folder / "adapter", (width, height), model)
    rows = []
    for mode in modes:
        request = GenerationRequest("a photo of a corgi", width, height, mode=mode, steps=1, strength=0.5,
                                    guidance=1.0, adapter=str(adapter) if mode == "tuned" else None)
        started = time.perf_counter()
        result = run(request, model, previews=False)
        seconds = time.perf_counter() - started
        plan = memory_plan(model, request)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        rows.append(f"| {model.name} | {mode} | {' -> '.join(result.metadata['stage_sizes'])} | "
                    f"{', '.join(result.metadata['upper_stage'])} | finite, {result.image.width}x{result.image.height}"
                    f" | {seconds:.0f} | {plan.peak / GIB:.1f} | {peak / GIB:.1f} |")
        print(rows[-1], flush=True)
    return rows


# The released text encoders' sizes (OpenCLIP ViT-H/14 for SD 2.x; CLIP ViT-L/14 + OpenCLIP ViT-bigG/14 for
# SDXL), for the weights a GPU holds; the runs above use tiny ones of the same hidden sizes.
TEXT_ENCODERS = {
    "sd21": [dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16)],
    "sdxl": [dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
             dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                  projection_dim=1280)],
}


def gpu_plans(arch: str) -> list[str]:
    """The memory plan of 2048² and 4096² in float16 on a GPU (VAE float32 by force_upcast), from the
    configs on the meta device (no weights, instant)."""
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(json.loads((CONFIGS / f"{arch}_unet.json").read_text()))
        vae = AutoencoderKL.from_config({**json.loads((CONFIGS / "sd_vae.json").read_text()),
                                         **({"sample_size": 1024} if arch == "sdxl" else {})})
        encoders = [CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **config))
                    for config in TEXT_ENCODERS[arch]]
    unet_only = module_bytes(unet) // 2
    weights = unet_only + module_bytes(*encoders) // 2 + module_bytes(vae)  # the VAE stays float32
    rows = []
    for side in (2048, 4096):
        for tiled, offloaded in ((False, False), (True, False), (True, True)):
            plan = plan_memory(unet.config, vae.config, (side, side), weights=unet_only if offloaded else weights,
                               unet_dtype=torch.float16, vae_dtype=torch.float32, guided=True, tiled=tiled,
                               device="cuda")
            rows.append(f"| {ARCHS[arch]} | {side}x{side} | {'on' if tiled else 'off'} | "
                        f"{'on' if offloaded else 'off'} | {plan.weights / GIB:.1f} | {plan.unet / GIB:.1f} | "
                        f"{plan.vae / GIB:.1f} | {plan.peak / GIB:.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default="sd21,sdxl")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--plans-only", action="store_true", help="only the GPU memory plans (instant)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    torch.set_num_threads(2)
    runs, plans, notes = [], [], []

    def write() -> str:  # after every row: an interrupted run keeps what it measured
        runs_table = ["| architecture | mode | stages | upper stages | image | seconds | estimated peak (GiB) | "
                      "process peak RSS so far (GiB) |", "|---|---|---|---|---|---|---|---|", *runs, ""]
        intro = ["Real layouts from configs/, random weights, float32, CPU (2 shared cores); one denoising "
                 "step per stage, no guidance; tiny random CLIP text encoders of the real hidden sizes.", "", *notes,
                 "", *runs_table] if notes else []
        table = "\n".join([
            *intro,
            "Memory plan on a GPU, float16 (VAE in float32 by its force_upcast), guidance on (batch 2), "
            "the released text encoders' sizes; offload keeps only the UNet's weights on the GPU:", "",
            "| architecture | image | VAE tiling | CPU offload | weights on GPU (GiB) | UNet activations (GiB) | "
            "VAE decode (GiB) | peak (GiB) |", "|---|---|---|---|---|---|---|---|", *plans, ""])
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table)
        return table

    archs = args.archs.split(",")
    for arch in archs:
        plans += gpu_plans(arch)
    write()
    if not args.plans_only:
        with tempfile.TemporaryDirectory() as scratch:
            for arch in archs:
                started = time.perf_counter()
                model = build(arch, Path(scratch))
                parameters = sum(p.numel() for p in model.unet.parameters())
                notes.append(f"- {ARCHS[arch]}: UNet {parameters / 1e6:.0f}M parameters, built in "
                             f"{time.perf_counter() - started:.0f} s; attention processors: UNet "
                             f"{sorted(attention_kinds(model.unet))}, VAE {sorted(attention_kinds(model.vae))}")
                print(notes[-1], flush=True)
                for mode in args.modes.split(","):
                    runs += run_modes(model, [mode], Path(scratch) / arch / mode)
                    write()
                del model
    print(write())


if __name__ == "__main__":
    main()
