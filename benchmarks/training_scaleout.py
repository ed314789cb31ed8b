"""Algorithm 1 scaled out: one process with batch 2B against two data-parallel processes with batch B each,
at the same effective batch, on the embedded model or the real SD 2.1 architecture.

    python benchmarks/training_scaleout.py                           # 60 steps, effective batch 8, 128 px
    python benchmarks/training_scaleout.py --steps 20 --batch 2 --size 64 --window 5
    python benchmarks/training_scaleout.py --architecture sd21 --size 256 --batch 1 --steps 12 --window 4 \
        --one-threads 1,2 --out benchmarks/results/training_scaleout_sd21.md

With --architecture sd21, SD 2.1's UNet and VAE from configs/ with random weights and a text encoder
of the released size (benchmarks/training_cost.py: build_sd21) are saved as a diffusers folder first, and
both commands train on it with --model. --one-threads runs the one-process command once per thread count
(1: the same cores per process as each of the two; 2: one process given both cores).

Both runs are the real command line: `python -m selfcascade train --batch 2B` and `torchrun --standalone
--nproc_per_node 2 -m selfcascade train --batch B` (gloo on the CPU), each process with `--threads` torch
threads. The training images are rendered larger than the stage size (1.5x per side) so random crops rarely
repeat: the frozen features are then computed every step, as with real photographs, and the comparison
measures the scale-out, not the reuse. Each run's training_log.json gives the loss of every step (averaged
over processes) and its time; the table shows the mean loss per window of steps with its standard error,
the difference between the runs in units of that error, and the throughput of each (images per second in
the training loop, and over the whole command with start-up). Writes benchmarks/results/training_scaleout.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "results" / "training_scaleout.md"


def run(processes: int, batch: int, images: Path, out: Path, args, threads: int | None = None,
        model: str | None = None) -> dict:
    """One training command; its log, with the wall time of the whole command added."""
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    command = [*launcher, "-m", "selfcascade", "train", "--images", str(images), "--size", f"{args.size}x{args.size}",
               "--steps", str(args.steps), "--batch", str(batch), "--lr", str(args.lr), "--seed", str(args.seed),
               "--quiet", "--out", str(out), *(["--model", model] if model else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads or args.threads)}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    log = json.loads((out / "training_log.json").read_text())
    log["wall"] = time.perf_counter() - started
    log["start_line"] = next(line for line in done.stderr.splitlines() if line.startswith("training on"))
    return log


def windows(losses: list[float], size: int) -> list[tuple[int, int, float, float]]:
    """(first step, last step, mean, standard error of the mean) per window of `size` steps."""
    rows = []
    for first in range(0, len(losses), size):
        part = losses[first:first + size]
        mean = sum(part) / len(part)
        spread = math.sqrt(sum((x - mean) ** 2 for x in part) / (len(part) - 1)) if len(part) > 1 else float("nan")
        rows.append((first + 1, first + len(part), mean, spread / math.sqrt(len(part))))
    return rows


def throughput(log: dict) -> float:
    """Images per second in the training loop, after the first step (start-up of the loop, first encodes)."""
    seconds = log["seconds"]
    if len(seconds) < 2:
        return log["effective_batch"] * len(seconds) / seconds[-1]
    return log["effective_batch"] * (len(seconds) - 1) / (seconds[-1] - seconds[0])


def table(ones: dict[int, dict], two: dict, args) -> str:
    one = ones[min(ones)]
    name = "SD 2.1 architecture (random weights)" if args.architecture == "sd21" else "Embedded model"
    lines = [f"{name}, stage {args.size}x{args.size}, {args.steps} steps, lr {args.lr}, effective batch "
             f"{one['effective_batch']} both; images rendered at {int(args.size * 1.5)} px (random crops, frozen "
             f"features reused in {one['frozen_features_reused']:.0%} / {two['frozen_features_reused']:.0%} of "
             f"lookups); {args.threads} torch thread(s) per process of the 2-process run; CPU, gloo.", "",
             "| run | start line | images/s (training loop) | s / step | wall time incl. start-up (s) |",
             "|---|---|---|---|---|"]
    runs = [(f"1 process, {threads} thread(s)", log) for threads, log in sorted(ones.items())]
    for label, log in (*runs, (f"2 processes, {args.threads} thread(s) each", two)):
        lines.append(f"| {label} | {log['start_line']} | {throughput(log):.2f} | "
                     f"{log['seconds'][-1] / len(log['seconds']):.3f} | {log['wall']:.0f} |")
    lines.append("")
    for threads, log in sorted(ones.items()):
        lines.append(f"2 processes / 1 process with {threads} thread(s): "
                     f"{throughput(two) / throughput(log):.2f}x the throughput  ")
    lines += ["", f"Losses below: the 1-process run with {min(ones)} thread(s) against the 2-process run.", "",
              "| steps | 1 process: mean loss ± s.e. | 2 processes: mean loss ± s.e. | difference / combined s.e. |",
              "|---|---|---|---|"]
    for (first, last, m1, e1), (_, _, m2, e2) in zip(windows(one["losses"], args.window),
                                                     windows(two["losses"], args.window)):
        combined = math.sqrt(e1 ** 2 + e2 ** 2)
        z = (m2 - m1) / combined if combined > 0 else float("nan")
        lines.append(f"| {first}-{last} | {m1:.4f} ± {e1:.4f} | {m2:.4f} ± {e2:.4f} | {z:+.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=4, help="per process in the 2-process run (B)")
    parser.add_argument("--size", type=int, default=128, help="stage size in px")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=10, help="steps per row of the loss table")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--architecture", choices=("embedded", "sd21"), default="embedded")
    parser.add_argument("--one-threads", default=None, help="thread counts of the 1-process run, e.g. 1,2 "
                                                            "(default: --threads)")
    args = parser.parse_args()
    from selfcascade.shapes.train_adapter import render_examples

    thread_counts = [int(n) for n in (args.one_threads or str(args.threads)).split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        images = Path(scratch) / "images"
        render_examples(images, args.images, int(args.size * 1.5), seed=args.seed)
        model = None
        if args.architecture == "sd21":
            from benchmarks.training_cost import build_sd21

            model = str(Path(scratch) / "sd21")
            build_sd21(Path(scratch) / "parts").pipeline.save_pretrained(model)
            print(f"SD 2.1 architecture saved to {model}", flush=True)
        ones = {}
        for threads in thread_counts:
            ones[threads] = run(1, 2 * args.batch, images, Path(scratch) / f"one{threads}", args, threads, model)
            print(f"1 process, {threads} thread(s): {throughput(ones[threads]):.2f} images/s", flush=True)
        two = run(2, args.batch, images, Path(scratch) / "two", args, model=model)
        print(f"2 processes: {throughput(two):.2f} images/s", flush=True)
    text = table(ones, two, args)
    print("\n" + text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
