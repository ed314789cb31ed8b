"""Correct-composition fraction and speed: direct vs hires-fix vs tuning-free Self-Cascade, embedded model.

    python benchmarks/composition.py                 # 64 prompt x seed pairs at 64, 128 and 256 px
    python benchmarks/composition.py --pairs 16 --sizes 256

Every pair runs every mode back to back (same prompt, same seed), so the time ratios are measured side by
side in one run. A result is correct when the shapes detector finds exactly one object of the prompt's
colour with the right shape (and size and background, where the prompt names them). Prints a Markdown
table and writes it to benchmarks/results/composition.md; also writes the README's comparison picture.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw  # noqa: E402

from selfcascade.cascade import run  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.presets import request_defaults  # noqa: E402
from selfcascade.request import GenerationRequest  # noqa: E402
from selfcascade.shapes.detector import check  # noqa: E402
from selfcascade.shapes.world import BACKGROUNDS, COLOURS, SHAPES, SIZES, PromptSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODES = ("direct", "hires-fix", "tuning-free")


def prompt_seed_pairs(count: int) -> list[tuple[PromptSpec, int]]:
    """Fixed pairs: colour and shape always named, size and background half the time each."""
    rng = random.Random(1234)
    pairs = []
    for index in range(count):
        spec = PromptSpec(shape=rng.choice(SHAPES), colour=rng.choice(list(COLOURS)),
                          size_word=rng.choice(SIZES) if rng.random() < 0.5 else None,
                          background=rng.choice(list(BACKGROUNDS)) if rng.random() < 0.5 else None)
        pairs.append((spec, 1000 + index))
    return pairs


def comparison_picture(model, settings: dict, path: Path, size: int = 256) -> None:
    """Same prompt and seed at `size` px: direct sampling beside the tuning-free cascade."""
    prompt, seed = "a large red circle on a white background", 7
    panels = []
    for mode in ("direct", "tuning-free"):
        result = run(GenerationRequest(prompt, size, size, mode=mode, seed=seed, **settings), model, previews=False)
        panels.append((mode if mode == "direct" else "Self-Cascade (tuning-free)", result.image))
    canvas = Image.new("RGB", (2 * size + 12, size + 28), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (label, image) in enumerate(panels):
        canvas.paste(image, (index * (size + 12), 28))
        draw.text((index * (size + 12) + 4, 6), f"{label}, {size}x{size}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--sizes", default="64,128,256")
    for key, kind in (("steps", int), ("strength", float), ("guidance", float), ("scheduler", str)):
        parser.add_argument(f"--{key}", type=kind, default=None, help="override the embedded preset's value")
    parser.add_argument("--no-picture", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "composition.md"))
    parser.add_argument("--picture", default=str(ROOT / "assets" / "direct_vs_cascade_256.png"))
    args = parser.parse_args()

    model = load_model(None)
    settings = request_defaults(None)
    settings.update({k: getattr(args, k) for k in settings if getattr(args, k, None) is not None})
    pairs = prompt_seed_pairs(args.pairs)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        # At the base size every mode is one identical stage: run it once.
        modes = ("direct",) if size <= model.base_size[0] else MODES
        correct = {mode: 0 for mode in modes}
        seconds = {mode: 0.0 for mode in modes}
        for spec, seed in pairs:
            for mode in modes:
                started = time.perf_counter()
                result = run(GenerationRequest(spec.to_prompt(), size, size, mode=mode, seed=seed, **settings),
                             model, previews=False)
                seconds[mode] += time.perf_counter() - started
                correct[mode] += check(result.image, spec).correct
        for mode in modes:
            label = mode if len(modes) > 1 else "all modes (one stage)"
            rows.append((f"{size}x{size}", label, 100 * correct[mode] / len(pairs), seconds[mode] / len(pairs),
                         seconds[mode] / seconds["direct"]))
            print(f"{size}px {label}: {rows[-1][2]:.1f}% correct, {rows[-1][3]:.2f} s/image", flush=True)

    header = (f"Embedded shapes model (trained at 64x64), {len(pairs)} prompt x seed pairs, "
              f"{settings['steps']} {settings['scheduler']} steps, strength {settings['strength']}, "
              f"guidance {settings['guidance']}, {os.cpu_count()} CPU cores.\n\n"
              "| size | mode | correct composition | seconds / image | time vs direct |\n|---|---|---|---|---|\n")
    table = header + "".join(f"| {s} | {m} | {c:.1f}% | {t:.2f} | {r:.2f}x |\n" for s, m, c, t, r in rows)
    print("\n" + table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)
    print(f"wrote {args.out}")
    if not args.no_picture:
        comparison_picture(model, settings, Path(args.picture))
        print(f"wrote {args.picture}")


if __name__ == "__main__":
    main()
