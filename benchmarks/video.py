"""Video Self-Cascade on the embedded shapes-video model: frames judged correct, direction, flicker, time.

    nice -n 19 python benchmarks/video.py --size 256 --frames 16 --videos 8 --modes direct tuning-free

Per video: every frame goes to the strict shapes judge (selfcascade.shapes.detector.check); the object's
centroid per frame (its mask from the detector) gives the track, whose net displacement must point the
prompted way (and be at least 5% of the side); flicker is the mean absolute frame-to-frame change of the
background pixels (0-255, outside the object in both frames). Prints one table row per mode.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfcascade.cascade import run  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.request import VideoRequest  # noqa: E402
from selfcascade.shapes.detector import check, object_mask  # noqa: E402
from selfcascade.shapes.motion import DIRECTIONS  # noqa: E402
from selfcascade.shapes.world import COLOURS, SHAPES  # noqa: E402

MIN_TRAVEL = 0.05  # net centroid displacement, fraction of the side, that counts as movement


def centroid(mask: np.ndarray | None) -> tuple[float, float] | None:
    if mask is None or not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    return xs.mean() / mask.shape[1], ys.mean() / mask.shape[0]


def direction_right(track: list, direction: str) -> bool:
    """The first and last found centroids moved at least MIN_TRAVEL along the prompted direction."""
    found = [point for point in track if point is not None]
    if len(found) < 2:
        return False
    dx, dy = DIRECTIONS[direction]
    moved = (found[-1][0] - found[0][0]) * dx + (found[-1][1] - found[0][1]) * dy
    return moved >= MIN_TRAVEL


def flicker(frames, masks) -> float:
    """Mean |frame t+1 - frame t| over background pixels (outside the object in both frames)."""
    changes = []
    for (a, b), (ma, mb) in zip(zip(frames, frames[1:]), zip(masks, masks[1:])):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        keep = np.ones(a.shape[:2], bool)
        for mask in (ma, mb):
            if mask is not None:
                keep &= ~mask
        if keep.any():
            changes.append(np.abs(a - b)[keep].mean())
    return float(np.mean(changes)) if changes else 0.0


def prompts(count: int, seed: int = 7) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    return [(f"a {rng.choice(list(COLOURS))} {rng.choice(SHAPES)}", rng.choice(list(DIRECTIONS)), 100 + i)
            for i in range(count)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--modes", nargs="+", default=["direct", "tuning-free"])
    parser.add_argument("--model", default="shapes-video")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    from selfcascade.shapes.motion import parse_motion_prompt

    print(f"| mode | size | frames | frames correct | direction right | flicker | s / video |")
    print("|---|---|---|---|---|---|---|")
    for mode in args.modes:
        correct = total = right = 0
        flickers, seconds = [], []
        for still, direction, seed in prompts(args.videos):
            prompt = f"{still} moving {direction}"
            spec = parse_motion_prompt(prompt)[0]
            started = time.perf_counter()
            result = run(VideoRequest(prompt, args.size, args.size, mode=mode, frames=args.frames, steps=args.steps,
                                      strength=0.5, guidance=4.0, scheduler="ddpm", seed=seed), model, previews=False)
            seconds.append(time.perf_counter() - started)
            masks = [object_mask(frame, spec) for frame in result.frames]
            correct += sum(check(frame, spec).correct for frame in result.frames)
            total += len(result.frames)
            right += direction_right([centroid(mask) for mask in masks], direction)
            flickers.append(flicker(result.frames, masks))
        print(f"| {mode} | {args.size} | {args.frames} | {correct / total:.2f} | {right}/{args.videos} | "
              f"{np.mean(flickers):.2f} | {np.mean(seconds):.1f} |", flush=True)


if __name__ == "__main__":
    main()
