"""Quick settings sweep on the embedded model: strict verdicts of several variants on the same prompt x seed pairs.

    python benchmarks/sweep.py SIZE PAIRS FIRST_SEED 'name:key=value,key=value' ...
    python benchmarks/sweep.py 256 48 5000 'latent:pivot_up=latent' 'pixel:pivot_up=pixel'
    python benchmarks/sweep.py 256x128 16 9000 'base:' 'other:model=DIR'     # SIZE: a side, or WIDTHxHEIGHT
    python benchmarks/sweep.py 256 24 3000 'h35:tuning.pyramid_sigma=0.35' 'anchor0:anchor=0'

A key is a GenerationRequest field (mode, strength, guidance, upper_guidance, anchor, steps, upper, stages
with ';' between sizes, pivot_up, ...), an upper-stage tunable as tuning.NAME (UpperStageSettings: the
request carries it; the module constants of earlier records, e.g. pivot_anchor.ANCHOR_SIGMA, name them too),
model=DIR (another model folder), or first=DIR ('embedded': the shipped model) to draw the
first stage with another model and hand its image to the variant's model as the pivot (`run(...,
pivot_image=...)`, the "upscale my image" path). Every variant starts from the embedded preset's
settings. Prints one line per variant: correct / pairs, mean edge sharpness, mean outline error per shape
(px of the outline off the fitted ideal shape, detector.OUTLINE_LIMIT_PX; true renders <= 0.17), seconds,
failure reasons; writes a contact sheet per variant to the system's temporary folder. SWEEP_THREADS=1 runs
it on one core (beside a background job). For choosing settings quickly; the tables of docs/results.md come from
composition.py, upper_stage.py and the other benchmarks.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.judging import marked, prompt_seed_pairs  # noqa: E402
from selfcascade.cascade.pipeline import run  # noqa: E402
from selfcascade.cascade.presets import request_defaults  # noqa: E402
from selfcascade.cascade.request import GenerationRequest  # noqa: E402
from selfcascade.cascade.stages import parse_size  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.shapes.detector import check  # noqa: E402
from selfcascade.shapes.edges import measure  # noqa: E402

# The module constants earlier records set (docs/experiments.md) -> the UpperStageSettings field now.
OLD_CONSTANTS = {"FREQUENCY_SPLIT_SIGMA": "frequency_split_sigma", "FREQUENCY_SPLIT_REFRESH": "frequency_split_refresh",
                 "PYRAMID_SIGMA": "pyramid_sigma", "PYRAMID_REFRESH": "pyramid_refresh",
                 "RAU_MIN_TARGET_SCALE": "rau_min_target_scale", "ANCHOR_SIGMA": "anchor_sigma"}
NUMBERS = {"strength": float, "guidance": float, "anchor": float, "upper_guidance": float, "steps": int,
           "consensus": int}


def variant_settings(spec: str) -> dict:
    """Request settings of one variant: the embedded preset's, with the variant's changes."""
    settings = {**request_defaults(None), "tuning": {}}
    for item in filter(None, spec.split(",")):
        key, value = item.split("=", 1)
        value = value.replace(";", ",")
        if "." in key:  # tuning.NAME, or an earlier record's module.CONSTANT
            name = key.rsplit(".", 1)[1]
            settings["tuning"][OLD_CONSTANTS.get(name, name)] = float(value)
        else:
            settings[key] = NUMBERS[key](value) if key in NUMBERS else value
    return settings


def main(argv: list[str]) -> None:
    if len(argv) < 4:
        raise SystemExit(__doc__)
    (width, height), count, first = parse_size(argv[0]), int(argv[1]), int(argv[2])
    size = f"{width}" if width == height else f"{width}x{height}"  # sheet names of square sizes as before
    sheets = Path(tempfile.gettempdir())
    torch.set_num_threads(int(os.environ.get("SWEEP_THREADS", "2")))  # 1 beside a background job
    model = load_model(None)
    pairs = prompt_seed_pairs(count, first_seed=first)
    for variant in argv[3:]:
        name, _, spec = variant.partition(":")
        settings = variant_settings(spec)
        # `model=DIR` measures another model folder (e.g. a retrained candidate) instead of the embedded one.
        variant_model = load_model(settings["model"]) if settings.get("model") else model
        first = settings.pop("first", None)
        first_model = None if first is None else model if first == "embedded" else load_model(first)
        correct, failures, sharpness, images = 0, Counter(), [], []
        deviations: dict[str, list[float]] = {}
        started = time.perf_counter()
        for prompt_spec, seed in pairs:
            request = GenerationRequest(prompt_spec.to_prompt(), width, height, seed=seed, **settings)
            pivot = None
            if first_model is not None:  # stage 0 by the other model, at its own first-stage size
                first_size = request.plan(first_model.base_size, first_model.size_multiple).sizes[0]
                pivot = run(replace(request, width=first_size[0], height=first_size[1], mode="tuning-free",
                                    adapter=None, model=None if first == "embedded" else first),
                            first_model, previews=False).image
            image = run(request, variant_model, previews=False, pivot_image=pivot).image
            verdict = check(image, prompt_spec)
            correct += verdict.correct
            failures.update(verdict.failures)
            if verdict.outline is not None:
                deviations.setdefault(prompt_spec.shape, []).append(verdict.outline)
            edges = measure(image, prompt_spec)
            if edges.sharpness is not None:
                sharpness.append(edges.sharpness)
            images.append(marked(image, verdict.correct))
        outline = " ".join(f"{shape} {np.mean(values):.2f}" for shape, values in sorted(deviations.items()))
        print(f"{name:24s} {correct}/{count}  sharpness {np.mean(sharpness):.3f}  outline px {outline}  "
              f"{time.perf_counter() - started:.0f} s  {dict(failures)}", flush=True)
        columns = 6
        sheet = Image.new("RGB", (width * columns, height * -(-len(images) // columns)), "white")
        for index, image in enumerate(images):
            sheet.paste(image, (width * (index % columns), height * (index // columns)))
        sheet.save(sheets / f"sweep_{name}_{size}.png")


if __name__ == "__main__":
    main(sys.argv[1:])
