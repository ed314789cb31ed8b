"""Seconds per image of each mode, measured interleaved and repeated, and the issue's two time ratios.

    python benchmarks/speed.py                          # 256 px, 8 pairs x 3 rounds, tuning-free / tuned / direct
    python benchmarks/speed.py --size 512 --modes tuning-free,tuned --pairs 4 --rounds 2

The composition benchmark times each image once, and a whole run's ratio moved between 0.61x and 0.73x from one
machine session to another (docs/results.md, "Time"). Here every round runs each pair in every mode back to back, in
a rotating order (so no mode always runs first after another one's memory traffic), after one warm-up image
per mode; the figure per mode is the median over all its images, and each ratio is also given per round
(min - max), so a reader sees how much the machine moved during the run. Prints the CPU and thread count:
the ratio depends on the machine session, not only on the code.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.judging import prompt_seed_pairs  # noqa: E402
from selfcascade.cascade.pipeline import run  # noqa: E402
from selfcascade.cascade.presets import request_defaults  # noqa: E402
from selfcascade.cascade.request import GenerationRequest  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.models.names import SHIPPED_ADAPTER  # noqa: E402

ADAPTER = SHIPPED_ADAPTER


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(model, settings: dict, prompt: str, seed: int, size: int, mode: str) -> float:
    request = GenerationRequest(prompt, size, size, seed=seed, **{**settings, "mode": mode},
                                adapter=str(ADAPTER) if mode == "tuned" else None)
    started = time.perf_counter()
    run(request, model, previews=False)
    return time.perf_counter() - started


def ratio(times: dict[str, list[float]], numerator: str, denominator: str) -> float:
    return statistics.median(times[numerator]) / statistics.median(times[denominator])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--modes", default="tuning-free,tuned,direct")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    modes = args.modes.split(",")
    model, settings = load_model(None), request_defaults(None)
    pairs = [(spec.to_prompt(), seed) for spec, seed in prompt_seed_pairs(args.pairs, first_seed=args.first_seed)]
    for mode in modes:  # warm-up: first calls allocate and pick kernels
        timed(model, settings, *pairs[0], args.size, mode)
    rounds: list[dict[str, list[float]]] = []
    for round_index in range(args.rounds):
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for pair_index, (prompt, seed) in enumerate(pairs):
            shift = (round_index + pair_index) % len(modes)
            for mode in modes[shift:] + modes[:shift]:
                times[mode].append(timed(model, settings, prompt, seed, args.size, mode))
        rounds.append(times)
    every = {mode: [t for times in rounds for t in times[mode]] for mode in modes}
    lines = [f"Embedded model, {args.size}x{args.size}, {args.pairs} prompt x seed pairs (seeds from "
             f"{args.first_seed}) x {args.rounds} rounds, modes interleaved; {cpu_name()}, "
             f"{args.threads} torch thread(s); the preset's settings.", "",
             "| mode | median s / image | min - max |", "|---|---|---|"]
    lines += [f"| {mode} | {statistics.median(values):.2f} | {min(values):.2f} - {max(values):.2f} |"
              for mode, values in every.items()]
    checks = [("tuning-free", "direct", "cascade / direct (goal <= 0.70)"),
              ("tuned", "tuning-free", "tuned / tuning-free (goal <= 1.10)")]
    lines += ["", "| ratio of medians | whole run | per round (min - max) |", "|---|---|---|"]
    for numerator, denominator, label in checks:
        if numerator in modes and denominator in modes:
            per_round = [ratio(times, numerator, denominator) for times in rounds]
            lines.append(f"| {label} | {ratio(every, numerator, denominator):.2f}x | "
                         f"{min(per_round):.2f}x - {max(per_round):.2f}x |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
