"""Where outlines go wrong: the judge's outline error (px) of circle prompts after every stage of the cascade.

    python benchmarks/stage_outlines.py                                  # 10 circles at 256 px, preset settings
    python benchmarks/stage_outlines.py --set strength=0.02              # the up-sampled pivots alone
    python benchmarks/stage_outlines.py --anchor-sigma 2                 # the hub models' anchored band
    python benchmarks/stage_outlines.py --size 512 --set upper=plain --set anchor=0
    python benchmarks/stage_outlines.py --model DIR                      # a retrained copy of the embedded model

Each stage's image (the StageDone preview, at that stage's size) is judged with
selfcascade.shapes.detector.check; the outline error is the 95th percentile distance (px) of the circle's
sub-pixel outline from the best-fitting circle (true renders <= 0.17 px; the judge's limit 1.5 px). A stage
that only up-sampled its pivot would double the previous figure; more than that is drawn by the stage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.judging import prompt_seed_pairs  # noqa: E402
from benchmarks.sweep import NUMBERS  # noqa: E402
from selfcascade.cascade.pipeline import StageDone, generate  # noqa: E402
from selfcascade.cascade.presets import request_defaults  # noqa: E402
from selfcascade.cascade.request import GenerationRequest  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.shapes.detector import check  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--circles", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None, help="a model folder instead of the embedded default")
    parser.add_argument("--anchor-sigma", type=float, default=None,
                        help="width (latent px) of the anchored band instead of the model's default")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a GenerationRequest field over the embedded preset's settings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = request_defaults(None)
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key] = NUMBERS.get(key, str)(value)
    model = load_model(args.model)
    if args.anchor_sigma is not None:
        model.default_anchor_sigma = args.anchor_sigma
    circles = [pair for pair in prompt_seed_pairs(6 * args.circles, first_seed=args.first_seed)
               if pair[0].shape == "circle"][:args.circles]
    totals: list[float] = []
    for spec, seed in circles:
        request = GenerationRequest(spec.to_prompt(), args.size, args.size, seed=seed, **settings)
        errors = [check(event.preview, spec).outline or 0.0 for event in generate(request, model)
                  if isinstance(event, StageDone) and event.preview is not None]
        totals = errors if not totals else [a + b for a, b in zip(totals, errors)]
        print(f"{spec.to_prompt():48s} seed {seed}: " + "  ".join(f"{e:.2f}" for e in errors), flush=True)
    print("mean outline error per stage (px): " + "  ".join(f"{t / len(circles):.2f}" for t in totals))


if __name__ == "__main__":
    main()
