"""An experiment, not a shipped method: does travelling initial noise make the embedded video model follow the
prompted direction? (FreeTraj's idea, training-free.)

    python benchmarks/travelling_noise.py --settings 0:0.36 0.9:0.6 0.9:0.45 0.9:0.8 0.8:0.6 1.0:0.6 \
        --out benchmarks/results/travelling_noise.md
    python benchmarks/travelling_noise.py --first-seed 900 --videos 24 --settings 0:0.36 0.9:0.6 \
        --out benchmarks/results/travelling_noise_held_out.md      # prompts and seeds the settings never saw

Each frame's starting noise is a window of one larger noise field, the window moved `travel` (a fraction of the
side, over the whole clip) against the prompted direction so the field's content travels with it; `mix` of the
variance is that field and the rest fresh noise per frame (mix 0 is the ordinary start). First stage only, at
the model's own 64 px, 16 frames; direction right (moved the prompted way without jumping), steady videos and
frames correct as in benchmarks/video.py (same prompts; `--first-seed` draws others).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import selfcascade.cascade.pipeline as cascade  # noqa: E402
from benchmarks.video import direction_right, prompts  # noqa: E402
from selfcascade.cascade.presets import request_defaults  # noqa: E402
from selfcascade.cascade.request import VideoRequest  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.shapes.detector import check, object_mask  # noqa: E402
from selfcascade.shapes.motion import DIRECTIONS, centroid, clip_unsteady, parse_motion_prompt  # noqa: E402

ORDINARY_NOISE = cascade.initial_noise


def travelling_noise(direction: str, mix: float, travel: float):
    """An `initial_noise` replacement whose frames are windows of one noise field moving along `direction`."""

    def initial_noise(model, scheduler, shape, generator):
        frames, channels, height, width = shape
        if mix <= 0:
            return ORDINARY_NOISE(model, scheduler, shape, generator)
        reach = int(math.ceil(travel * max(height, width)))
        field = torch.randn((channels, height + reach, width + reach), generator=generator)
        dx, dy = DIRECTIONS[direction]
        windows = []
        for frame in range(frames):
            offset = int(round(frame / max(1, frames - 1) * travel * max(height, width)))
            left = reach - offset if dx > 0 else offset if dx < 0 else reach // 2
            top = reach - offset if dy > 0 else offset if dy < 0 else reach // 2
            windows.append(field[:, top:top + height, left:left + width])
        fresh = torch.randn(shape, generator=generator)
        noise = math.sqrt(mix) * torch.stack(windows) + math.sqrt(1 - mix) * fresh
        return noise.to(model.device, model.dtype) * scheduler.init_noise_sigma

    return initial_noise


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["0:0.36", "0.7:0.36"], help="mix:travel pairs")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--model", default="shapes-video")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=100, help="other prompts and seeds (held out)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    # One pass from the travelling noise: FreeInit's second pass would start from other noise (as measured).
    settings = {**request_defaults("shapes-video"), "upper": None, "free_init": 0}
    lines = [f"{args.model}, 64x64 (one stage), 16 frames, {args.videos} videos from seed {args.first_seed}; "
             f"settings {settings}", "",
             "| noise mix | travel | direction right | steady videos | frames correct | s / video |",
             "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    try:
        for setting in args.settings:
            mix, travel = (float(value) for value in setting.split(":"))
            right = steady = correct = total = 0
            started = time.perf_counter()
            for still, direction, seed in prompts(args.videos, args.first_seed):
                cascade.initial_noise = travelling_noise(direction, mix, travel)
                prompt = f"{still} moving {direction}"
                spec = parse_motion_prompt(prompt)[0]
                result = cascade.run(VideoRequest(prompt, 64, 64, mode="direct", frames=16, seed=seed, **settings),
                                     model, previews=False)
                right += direction_right([centroid(object_mask(frame, spec)) for frame in result.frames], direction)
                verdicts = [check(frame, spec) for frame in result.frames]
                steady += not clip_unsteady(verdicts)
                correct += sum(verdict.correct for verdict in verdicts)
                total += len(verdicts)
            seconds = (time.perf_counter() - started) / args.videos
            lines.append(f"| {mix:g} | {travel:g} | {right}/{args.videos} | {steady}/{args.videos} | {correct}/{total} "
                         f"| {seconds:.1f} |")
            print(lines[-1], flush=True)
    finally:
        cascade.initial_noise = ORDINARY_NOISE
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
