"""Convolution weights in channels-last (NHWC) memory format against the default (NCHW): time per UNet call at
the shapes a 256 px cascade makes, and whole runs of the embedded presets, the two formats interleaved.

    python benchmarks/channels_last.py                  # embedded model, 2 threads, about 3 minutes
    python benchmarks/channels_last.py --runs 8 --threads 1

The loader (selfcascade.models.loader.load_model) puts the UNet's and VAE's 2-D convolution weights in
channels-last (selfcascade.models.placement.use_channels_last); this script times both formats in one
process by converting the same modules back and forth, and checks that the two formats give the same image
(largest pixel difference). Prints a markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from selfcascade.cascade import run  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.presets import request_defaults  # noqa: E402
from selfcascade.request import GenerationRequest  # noqa: E402

# (batch, channels, height, width) of the UNet calls of a 256 px embedded cascade (guided first stage, the
# consensus batch, dilated views of 2x and 4x stages, full calls) and of the direct 256 px call.
CALL_SHAPES = [(2, 4, 16, 16), (8, 4, 16, 16), (16, 4, 16, 16), (4, 4, 32, 32), (1, 4, 32, 32), (1, 4, 64, 64),
               (2, 4, 64, 64)]


def set_format(pipeline, memory_format: torch.memory_format) -> None:
    for part in (pipeline.unet, pipeline.vae):
        for module in part.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.data = module.weight.data.contiguous(memory_format=memory_format)


def time_call(unet, shape: tuple[int, ...], repeats: int) -> float:
    latents = torch.randn(shape)
    text = torch.randn(shape[0], 16, unet.config.cross_attention_dim)
    timestep = torch.tensor([500])
    with torch.inference_mode():
        unet(latents, timestep, encoder_hidden_states=text, return_dict=False)  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            unet(latents, timestep, encoder_hidden_states=text, return_dict=False)
    return (time.perf_counter() - started) / repeats * 1000


def time_run(model, mode: str, seed: int) -> tuple[float, np.ndarray]:
    settings = request_defaults(None)
    if mode == "direct":
        settings["upper"] = None  # the paper's direct baseline, as benchmarks/composition.py runs it
    request = GenerationRequest("a large red circle on a white background", 256, 256, mode=mode, seed=seed,
                                **settings)
    started = time.perf_counter()
    result = run(request, model, previews=False)
    return time.perf_counter() - started, np.asarray(result.image, dtype=np.int16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4, help="whole runs per mode and format")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(None)
    formats = {"NCHW": torch.contiguous_format, "NHWC (shipped)": torch.channels_last}
    print(f"Embedded model, {args.threads} thread(s), torch {torch.__version__}.\n")
    print("| UNet call | " + " | ".join(f"{name} ms" for name in formats) + " | ratio |")
    print("|---|" + "---|" * (len(formats) + 1))
    for shape in CALL_SHAPES:
        repeats = 8 if shape[-1] >= 64 else 30
        times = []
        for memory_format in formats.values():
            set_format(model.pipeline, memory_format)
            times.append(time_call(model.unet, shape, repeats))
        print(f"| {tuple(shape)} | " + " | ".join(f"{t:.1f}" for t in times) + f" | {times[1] / times[0]:.2f} |")
    print("\n| 256 px run | " + " | ".join(f"{name} s" for name in formats) + " | ratio | largest pixel difference |")
    print("|---|" + "---|" * (len(formats) + 2))
    for mode in ("tuning-free", "direct"):
        totals, differences = [0.0, 0.0], []
        for seed in range(args.runs + 1):
            images = []
            for index, memory_format in enumerate(formats.values()):
                set_format(model.pipeline, memory_format)
                seconds, image = time_run(model, mode, seed)
                totals[index] += seconds if seed else 0.0  # seed 0 warms up
                images.append(image)
            differences.append(int(np.abs(images[0] - images[1]).max()))
        print(f"| {mode} | " + " | ".join(f"{t / args.runs:.2f}" for t in totals)
              + f" | {totals[1] / totals[0]:.2f} | {max(differences)} |")
    set_format(model.pipeline, torch.channels_last)


if __name__ == "__main__":
    main()
