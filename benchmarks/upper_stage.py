"""Upper-stage denoising strategies side by side: strict composition, edges, background, time (embedded model).

    python benchmarks/upper_stage.py                             # 32 pairs at 256 px, every strategy
    python benchmarks/upper_stage.py --pairs 16 --sizes 256,512 --strategies plain,frequency-split
    python benchmarks/upper_stage.py --strategies frequency-split --sigma 0.5,1.0 --refresh 1,2
    python benchmarks/upper_stage.py --strategies frequency-split --anchor 0,1 --sizes 256,512

Every pair runs every strategy with the same prompt and seed, one after the other, so times compare side by
side. `--sigma` / `--refresh` sweep the frequency split's low-pass width (latent pixels per unit of scale)
and how often its dilated view is recomputed; `--anchor` sweeps the pivot anchoring weight (0 = off).
Writes benchmarks/results/upper_stage.md and a contact sheet.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.judging import TABLE_HEADER, Tally, contact_sheet, prompt_seed_pairs, table_row  # noqa: E402
from selfcascade import upper_stage  # noqa: E402
from selfcascade.cascade import run  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.pivot_anchor import DEFAULT_ANCHOR  # noqa: E402
from selfcascade.presets import request_defaults  # noqa: E402
from selfcascade.request import GenerationRequest  # noqa: E402


def variants(strategies: list[str], sigmas: list[float], refreshes: list[int],
             anchors: list[float]) -> list[tuple[str, float, int, float]]:
    """(strategy, sigma, refresh, anchor) to run; the sigma/refresh sweep applies to the frequency split only."""
    out = []
    for name in strategies:
        if name == "frequency-split":
            out += [(name, s, r) for s, r in itertools.product(sigmas, refreshes)]
        else:
            out.append((name, upper_stage.FREQUENCY_SPLIT_SIGMA, upper_stage.FREQUENCY_SPLIT_REFRESH))
    return [(*run_, anchor) for run_ in out for anchor in anchors]


def label(name: str, sigma: float, refresh: int, anchor: float, sweep: bool, anchor_sweep: bool) -> str:
    text = f"{name} (sigma {sigma}s, refresh {refresh})" if name == "frequency-split" and sweep else name
    return f"{text}, anchoring {anchor:g}" if anchor_sweep else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--sizes", default="256")
    parser.add_argument("--strategies", default=",".join(upper_stage.STRATEGIES))
    parser.add_argument("--sigma", default=str(upper_stage.FREQUENCY_SPLIT_SIGMA))
    parser.add_argument("--refresh", default=str(upper_stage.FREQUENCY_SPLIT_REFRESH))
    parser.add_argument("--anchor", default=str(DEFAULT_ANCHOR), help="pivot anchoring weights, e.g. 0,1")
    parser.add_argument("--mode", default="tuning-free")
    parser.add_argument("--strength", type=float, default=None, help="override the embedded preset's strength")
    parser.add_argument("--adapter", default=str(ROOT / "assets" / "shapes-adapter"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "upper_stage.md"))
    parser.add_argument("--sheet", default=str(ROOT / "benchmarks" / "results" / "upper_stage.png"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads (1 on a machine shared with other jobs: no OpenMP spin contention)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_model(None)
    settings = request_defaults(None)
    settings.pop("upper", None)
    settings.pop("anchor", None)
    if args.strength is not None:
        settings["strength"] = args.strength
    pairs = prompt_seed_pairs(args.pairs, first_seed=args.first_seed)
    sigmas, refreshes = [float(s) for s in args.sigma.split(",")], [int(r) for r in args.refresh.split(",")]
    anchors = [float(a) for a in args.anchor.split(",")]
    runs = variants(args.strategies.split(","), sigmas, refreshes, anchors)
    sweep, anchor_sweep = len(sigmas) * len(refreshes) > 1, len(anchors) > 1
    lines, sheet = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        tallies = {run_: Tally() for run_ in runs}
        shown: dict = {run_: [] for run_ in runs}
        for index, (spec, seed) in enumerate(pairs):
            for name, sigma, refresh, anchor in runs:
                upper_stage.FREQUENCY_SPLIT_SIGMA, upper_stage.FREQUENCY_SPLIT_REFRESH = sigma, refresh
                request = GenerationRequest(spec.to_prompt(), size, size, mode=args.mode, seed=seed, upper=name,
                                            anchor=anchor, adapter=args.adapter if args.mode == "tuned" else None,
                                            **settings)
                started = time.perf_counter()
                image = run(request, model, previews=False).image
                tallies[(name, sigma, refresh, anchor)].add(image, spec, time.perf_counter() - started)
                if index < 8:
                    shown[(name, sigma, refresh, anchor)].append(image)
            print(f"{size}px pair {index + 1}/{len(pairs)}: " + ", ".join(
                f"{label(*r, sweep, anchor_sweep)} {t.correct}" for r, t in tallies.items()), flush=True)
        for run_, tally in tallies.items():
            lines.append(table_row(f"{size}x{size}", args.mode, label(*run_, sweep, anchor_sweep), tally, None))
            sheet.append((f"{size}px {label(*run_, sweep, anchor_sweep)}", shown[run_]))
    header = (f"Embedded model (trained at 64x64), {len(pairs)} prompt x seed pairs (seeds from {args.first_seed}), "
              f"{settings['steps']} {settings['scheduler']} steps, strength {settings['strength']}, "
              f"guidance {settings['guidance']}, mode {args.mode}, pivot anchoring {args.anchor}, "
              f"{os.cpu_count()} CPU cores.\n\n")
    table = header + TABLE_HEADER + "".join(lines)
    print("\n" + table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)
    contact_sheet(sheet, Path(args.sheet))
    print(f"wrote {args.out} and {args.sheet}")


if __name__ == "__main__":
    main()
