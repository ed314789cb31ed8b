"""Video Self-Cascade on the embedded shapes-video model: frames judged correct, direction, flicker, time.

    python benchmarks/video.py --size 256 --frames 16 --videos 8 --modes direct tuning-free tuned \
        --out benchmarks/results/video.md --sheet benchmarks/results/video.png
    python benchmarks/video.py --size 256x192 ...            # a side, or WIDTHxHEIGHT

Per video: every frame goes to the strict shapes judge (selfcascade.shapes.detector.check); the object's
centroid per frame (its mask from the detector) gives the track, whose net displacement must point the
prompted way (at least 5% of the side) without jumping more than 0.12 of the side between frames
(selfcascade.shapes.motion.track_follows); flicker is the mean absolute frame-to-frame change of the
background pixels (0-255, outside the object in both frames); a video is steady when its background keeps
its colour and its object its size (selfcascade.shapes.motion.clip_unsteady). Prints one table row per mode,
with the judge's failure reasons counted over frames; the sheet shows 4 frames per video outlined by verdict,
to check them.
Sampling settings are the model's preset (as the app and the CLI use them); the tuned mode uses the
shipped video adapter (selfcascade/assets/shapes-video-adapter).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.judging import size_label  # noqa: E402
from selfcascade.cascade.pipeline import run  # noqa: E402
from selfcascade.cascade.presets import request_defaults  # noqa: E402
from selfcascade.cascade.request import DEFAULT_FREE_INIT, VideoRequest  # noqa: E402
from selfcascade.cascade.stages import parse_size  # noqa: E402
from selfcascade.diffusion.upper_stage import canonical_strategy  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.models.names import SHIPPED_ADAPTERS  # noqa: E402
from selfcascade.shapes.detector import check, object_mask  # noqa: E402
from selfcascade.shapes.motion import DIRECTIONS, centroid, clip_unsteady, track_follows  # noqa: E402
from selfcascade.shapes.world import COLOURS, SHAPES  # noqa: E402

ADAPTER = SHIPPED_ADAPTERS["shapes-video-adapter"]


def direction_right(track: list, direction: str) -> bool:
    """The track moved along the prompted direction without jumping (selfcascade.shapes.motion.track_follows)."""
    return not track_follows(track, direction)


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


def prompts(count: int, first_seed: int = 100) -> list[tuple[str, str, int]]:
    """(still prompt, direction, seed) per video; another `first_seed` draws other prompts and seeds (held out:
    the settings were chosen on the default 100)."""
    rng = random.Random(7 if first_seed == 100 else first_seed)
    return [(f"a {rng.choice(list(COLOURS))} {rng.choice(SHAPES)}", rng.choice(list(DIRECTIONS)), first_seed + i)
            for i in range(count)]


def sheet_row(frames, verdicts, direction: str, ok: bool, columns: int = 4) -> Image.Image:
    """`columns` evenly spaced frames of one video, each outlined green (judged correct) or red, plus a
    label with the prompted direction and whether the track followed it."""
    step = max(1, (len(frames) - 1) // max(1, columns - 1))
    picked = list(range(0, len(frames), step))[:columns]
    width, height = frames[0].size
    row = Image.new("RGB", (width * columns + 90, height), "white")
    draw = ImageDraw.Draw(row)
    for slot, index in enumerate(picked):
        row.paste(frames[index], (slot * width, 0))
        colour = (0, 170, 0) if verdicts[index].correct else (220, 0, 0)
        draw.rectangle((slot * width, 0, (slot + 1) * width - 1, height - 1), outline=colour, width=3)
    draw.text((width * columns + 6, height // 2 - 12), f"{direction}\n{'moved' if ok else 'NOT moved'}", fill="black")
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=(256, 256), help="a side, or WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="default: the model's preset (40)")
    parser.add_argument("--modes", nargs="+", default=["direct", "tuning-free", "tuned"])
    parser.add_argument("--model", default="shapes-video")
    parser.add_argument("--settings-from", default=None,
                        help="take the sampling settings of this model's preset (default: --model's); to measure a "
                             "retrained copy of the embedded model with its settings")
    parser.add_argument("--adapter", default=str(ADAPTER), help="the tuned mode's adapter (trained on clips)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=100, help="other prompts and seeds (held out)")
    parser.add_argument("--free-init", type=int, default=None,
                        help=f"extra FreeInit passes of the first stage (default {DEFAULT_FREE_INIT})")
    parser.add_argument("--upper", default=None, help="upper-stage strategy (default: the model's preset)")
    parser.add_argument("--guidance", type=float, default=None, help="first-stage guidance (default: the preset's)")
    parser.add_argument("--anchor", type=float, default=None, help="pivot anchoring weight (default: the model's)")
    parser.add_argument("--anchor-sigma", type=float, default=None,
                        help="width (latent px) of the anchored band (default: the model's)")
    parser.add_argument("--motion", default=None,
                        help="first-stage motion steering: auto (the prompt's direction; the default), none, or a "
                             "direction (selfcascade.diffusion.motion_steering)")
    parser.add_argument("--travel", type=float, default=None, help="steered travel, fraction of the side")
    parser.add_argument("--steer", type=float, default=None, help="share of the first stage's steps steered")
    parser.add_argument("--out", default=None, help="also write the table to this .md file")
    parser.add_argument("--sheet", default=None, help="a PNG of 4 frames per video, outlined by verdict")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    # The embedded video model samples like the image model under it (presets.EMBEDDED_VIDEO_ANCHOR aside).
    settings = request_defaults(args.settings_from or args.model)
    if args.steps is not None:
        settings["steps"] = args.steps
    if args.upper is not None:
        settings["upper"] = canonical_strategy(args.upper)  # an earlier name (rau-pyramid) as its current one
    if args.guidance is not None:
        settings["guidance"] = args.guidance
    if args.anchor is not None:
        settings["anchor"] = args.anchor
    if args.anchor_sigma is not None:
        model.default_anchor_sigma = args.anchor_sigma
    settings["free_init"] = DEFAULT_FREE_INIT if args.free_init is None else args.free_init
    for key in ("motion", "travel", "steer"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    from selfcascade.shapes.motion import parse_motion_prompt

    width, height = args.size
    shown_size = size_label(width, height)
    lines = [f"{args.model} at {width}x{height}, {args.frames} frames, {args.videos} videos per mode from seed "
             f"{args.first_seed}, {args.threads} threads; settings {settings}, anchored band "
             f"{model.default_anchor_sigma} latent px.",
             "",
             "| mode | size | frames | frames correct | failures | direction right | steady videos | flicker "
             "| s / video |",
             "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    rows = []
    for mode in args.modes:
        correct = total = right = steady = 0
        unsteady = Counter()
        flickers, seconds, failures = [], [], Counter()
        for still, direction, seed in prompts(args.videos, args.first_seed):
            prompt = f"{still} moving {direction}"
            spec = parse_motion_prompt(prompt)[0]
            started = time.perf_counter()
            # The direct baseline is the paper's: the plain full-size call (the strategy is for the cascade).
            own = {**settings, "upper": None} if mode == "direct" else settings
            result = run(VideoRequest(prompt, width, height, mode=mode, frames=args.frames, seed=seed,
                                      adapter=args.adapter if mode == "tuned" else None, **own),
                         model, previews=False)
            seconds.append(time.perf_counter() - started)
            masks = [object_mask(frame, spec) for frame in result.frames]
            verdicts = [check(frame, spec) for frame in result.frames]
            correct += sum(v.correct for v in verdicts)
            failures.update(kind for v in verdicts for kind in v.failures)
            total += len(result.frames)
            moved = direction_right([centroid(mask) for mask in masks], direction)
            right += moved
            reasons = clip_unsteady(verdicts)
            steady += not reasons
            unsteady.update("background" if "background" in reason else "size" for reason in reasons)
            flickers.append(flicker(result.frames, masks))
            rows.append((mode, sheet_row(result.frames, verdicts, direction, moved)))
        reasons = ", ".join(f"{kind} {count}" for kind, count in failures.most_common()) or "-"
        line = (f"| {mode} | {shown_size} | {args.frames} | {correct / total:.2f} ({correct}/{total}) | {reasons} | "
                f"{right}/{args.videos} | {steady}/{args.videos}"
                f"{' (' + ', '.join(f'{k} {v}' for k, v in unsteady.items()) + ')' if unsteady else ''} | "
                f"{np.mean(flickers):.2f} | {np.mean(seconds):.1f} |")
        lines.append(line)
        print(line, flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    if args.sheet and rows:
        row_width, row_height = rows[0][1].size
        sheet = Image.new("RGB", (row_width, row_height * len(rows)), "white")
        for index, (_, row) in enumerate(rows):
            sheet.paste(row, (0, index * row_height))
        # frames at half size (128 px for 256 px videos)
        sheet.resize((row_width // 2, row_height * len(rows) // 2), Image.Resampling.LANCZOS).save(args.sheet)


if __name__ == "__main__":
    main()
