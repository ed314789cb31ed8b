"""Upper-stage denoising strategies side by side: strict composition, edges, background, time (embedded model).

    python benchmarks/upper_stage.py                             # 32 pairs at 256 px, every strategy
    python benchmarks/upper_stage.py --pairs 16 --sizes 256,512 --strategies plain,frequency-split
    python benchmarks/upper_stage.py --strategies frequency-split --sigma 0.5,1.0 --refresh 1,2
    python benchmarks/upper_stage.py --strategies frequency-split --anchor 0,1 --sizes 256,512
    python benchmarks/upper_stage.py --strategies frequency-pyramid --upper-guidance 4,2,1 --pyramid-sigma 0.35,0.5

Every pair runs every strategy with the same prompt and seed, one after the other, so times compare side by
side. `--sigma` / `--refresh` sweep the frequency split's low-pass width (latent pixels per unit of scale)
and how often its dilated view is recomputed; `--anchor` sweeps the pivot anchoring weight (0 = off);
`--upper-guidance` the guidance of the stages after the first; `--pyramid-sigma` the pyramid's band edge h.
Writes benchmarks/results/upper_stage.md and a contact sheet.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.judging import TABLE_HEADER, Tally, contact_sheet, marked, prompt_seed_pairs, table_row  # noqa: E402
from selfcascade.cascade.pipeline import run  # noqa: E402
from selfcascade.cascade.presets import request_defaults, upper_guidance_of  # noqa: E402
from selfcascade.cascade.request import GenerationRequest  # noqa: E402
from selfcascade.diffusion import upper_stage  # noqa: E402
from selfcascade.diffusion.anchor import DEFAULT_ANCHOR  # noqa: E402
from selfcascade.diffusion.upper_stage import UpperStageSettings  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.models.names import SHIPPED_ADAPTER  # noqa: E402

DEFAULTS = UpperStageSettings()


@dataclass(frozen=True)
class Variant:
    """One configuration to run: the strategy and the knobs a sweep may vary."""

    name: str
    sigma: float  # frequency-split low-pass width, latent px per unit of scale
    refresh: int  # frequency-split: recompute the dilated view every this many steps
    anchor: float  # pivot anchoring weight
    upper_guidance: float | None  # guidance of the stages after the first (None: the preset's)
    pyramid_sigma: float  # frequency-pyramid band edge h


def variants(strategies: list[str], sigmas: list[float], refreshes: list[int], anchors: list[float],
             guidances: list[float | None], pyramid_sigmas: list[float]) -> list[Variant]:
    """Every combination to run; sigma/refresh sweep the frequency split only, h the pyramid only."""
    out = []
    for name in strategies:
        split = list(itertools.product(sigmas, refreshes)) if name == "frequency-split" else [
            (DEFAULTS.frequency_split_sigma, DEFAULTS.frequency_split_refresh)]
        pyramid = pyramid_sigmas if name == "frequency-pyramid" else [DEFAULTS.pyramid_sigma]
        for (sigma, refresh), h, anchor, guidance in itertools.product(split, pyramid, anchors, guidances):
            out.append(Variant(name, sigma, refresh, anchor, guidance, h))
    return out


def label(run_: Variant, swept: set[str]) -> str:
    """The strategy's name plus the knobs that vary in this run."""
    parts = []
    if run_.name == "frequency-split" and {"sigma", "refresh"} & swept:
        parts.append(f"sigma {run_.sigma}s, refresh {run_.refresh}")
    if run_.name == "frequency-pyramid" and "pyramid_sigma" in swept:
        parts.append(f"h {run_.pyramid_sigma:g}")
    if "upper_guidance" in swept:
        parts.append(f"upper guidance {run_.upper_guidance:g}")
    if "anchor" in swept:
        parts.append(f"anchoring {run_.anchor:g}")
    return f"{run_.name} ({', '.join(parts)})" if parts else run_.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--sizes", default="256")
    parser.add_argument("--strategies", default=",".join(upper_stage.STRATEGIES))
    parser.add_argument("--sigma", default=str(DEFAULTS.frequency_split_sigma))
    parser.add_argument("--refresh", default=str(DEFAULTS.frequency_split_refresh))
    parser.add_argument("--anchor", default=str(DEFAULT_ANCHOR), help="pivot anchoring weights, e.g. 0,1")
    parser.add_argument("--upper-guidance", default="", help="upper-stage guidance values, e.g. 4,2,1 "
                        "(default: the preset's)")
    parser.add_argument("--pyramid-sigma", default=str(DEFAULTS.pyramid_sigma),
                        help="frequency-pyramid band edges h, e.g. 0.35,0.5")
    parser.add_argument("--mode", default="tuning-free")
    parser.add_argument("--strength", type=float, default=None, help="override the embedded preset's strength")
    parser.add_argument("--adapter", default=str(SHIPPED_ADAPTER))
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
    guidances = [float(g) for g in args.upper_guidance.split(",")] if args.upper_guidance else [
        settings.get("upper_guidance")]
    pyramid_sigmas = [float(h) for h in args.pyramid_sigma.split(",")]
    strategies = [upper_stage.canonical_strategy(name) for name in args.strategies.split(",")]  # rau -> hidiffusion
    runs = variants(strategies, sigmas, refreshes, anchors, guidances, pyramid_sigmas)
    swept = {knob for knob, values in (("sigma", sigmas), ("refresh", refreshes), ("anchor", anchors),
                                       ("upper_guidance", guidances), ("pyramid_sigma", pyramid_sigmas))
             if len(values) > 1}
    lines, sheet = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        tallies = {run_: Tally() for run_ in runs}
        shown: dict = {run_: [] for run_ in runs}
        for index, (spec, seed) in enumerate(pairs):
            for run_ in runs:
                tuning = {"frequency_split_sigma": run_.sigma, "frequency_split_refresh": run_.refresh,
                          "pyramid_sigma": run_.pyramid_sigma}
                request = GenerationRequest(spec.to_prompt(), size, size, mode=args.mode, seed=seed, tuning=tuning,
                                            upper=run_.name, anchor=run_.anchor,
                                            adapter=args.adapter if args.mode == "tuned" else None,
                                            **{**settings, "upper_guidance": run_.upper_guidance})
                started = time.perf_counter()
                image = run(request, model, previews=False).image
                correct = tallies[run_].add(image, spec, time.perf_counter() - started)
                if index < 8:
                    shown[run_].append(marked(image, correct))
            print(f"{size}px pair {index + 1}/{len(pairs)}: " + ", ".join(
                f"{label(r, swept)} {t.correct}" for r, t in tallies.items()), flush=True)
        for run_, tally in tallies.items():
            lines.append(table_row(f"{size}x{size}", args.mode, label(run_, swept), tally, None))
            sheet.append((f"{size}px {label(run_, swept)}", shown[run_]))
    header = (f"Embedded model (trained at 64x64), {len(pairs)} prompt x seed pairs (seeds from {args.first_seed}), "
              f"{settings['steps']} {settings['scheduler']} steps, strength {settings['strength']}, "
              f"guidance {settings['guidance']} (upper stages "
              f"{args.upper_guidance or upper_guidance_of(settings)}), "
              f"mode {args.mode}, pivot anchoring {args.anchor}, "
              f"{os.cpu_count()} CPU cores.\n\n")
    table = header + TABLE_HEADER + "".join(lines)
    print("\n" + table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)
    contact_sheet(sheet, Path(args.sheet))
    print(f"wrote {args.out} and {args.sheet}")


if __name__ == "__main__":
    main()
