"""Peak RAM of the real SDXL VAE architecture decoding 1024², 2048² and 4096², with and without tiles,
beside the estimate selfcascade.models.memory makes before a run.

    python benchmarks/vae_memory.py                 # all sizes, about an hour on 2 CPU cores
    python benchmarks/vae_memory.py --sizes 1024    # one size
    python benchmarks/vae_memory.py --sizes 4096 --threads 1   # beside other work (peaks do not change)

The VAE is AutoencoderKL from configs/sd_vae.json with SDXL's scaling factor and sample size
(random weights; memory does not depend on their values), float32, on the CPU, decoding random latents
through the app's own path (selfcascade.models.vae.decode_to_uint8, tiles of TILE_SIDE px when tiled).

Method: every case runs in a fresh Python process. It imports torch and diffusers, reads its resident set
size (RSS) as the baseline, builds the VAE, decodes once, and reports ru_maxrss (the kernel's record of
the process's peak RSS) minus that baseline: the weights plus everything the decode allocated at its peak.
The estimate is selfcascade.models.memory's: weights + vae_decode_bytes. A case whose estimate exceeds this
machine's available RAM is not run (the same refusal a real run gets) and is reported as such.
Writes benchmarks/results/vae_memory.md, one row at a time, so an interrupted run keeps what it measured;
rows of sizes not run this time are kept from the file (so sizes can be measured in separate sittings).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = ROOT / "configs" / "sd_vae.json"
OUT = ROOT / "benchmarks" / "results" / "vae_memory.md"
GIB = 2**30


def sdxl_vae_config() -> dict:
    config = json.loads(CONFIG.read_text())
    config.update(scaling_factor=0.13025, sample_size=1024, force_upcast=True)  # SDXL's values
    return config


def measure_one(side: int, tiled: bool, threads: int) -> dict:
    """In this (fresh) process: decode once, return peak RSS above the baseline and seconds."""
    import psutil
    import torch
    from diffusers import AutoencoderKL

    from selfcascade.models.vae import decode_to_uint8

    torch.set_num_threads(threads)
    baseline = psutil.Process().memory_info().rss
    vae = AutoencoderKL.from_config(sdxl_vae_config()).eval().requires_grad_(False)
    latents = torch.randn(1, 4, side // 8, side // 8, generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()
    image = decode_to_uint8(vae, latents * vae.config.scaling_factor, tiled)
    seconds = time.perf_counter() - started
    assert image.shape == (1, side, side, 3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports kB
    return {"peak": peak - baseline, "seconds": seconds}


def estimate_one(side: int, tiled: bool) -> int:
    import torch
    from diffusers import AutoencoderKL

    from selfcascade.models.memory import module_bytes, vae_decode_bytes

    with torch.device("meta"):
        vae = AutoencoderKL.from_config(sdxl_vae_config())
    return module_bytes(vae) + vae_decode_bytes(vae.config, side, side, 4, tiled)


def run_case(side: int, tiled: bool, available: int, threads: int) -> str:
    from selfcascade.models.memory import MARGIN

    estimate = estimate_one(side, tiled)
    label = f"| {side}x{side} | {'tiled' if tiled else 'untiled'} | {estimate / GIB:.2f} |"
    if estimate > MARGIN * available:
        return f"{label} not run | - | - | estimate exceeds this machine's available RAM ({available / GIB:.1f} GiB) |"
    done = subprocess.run([sys.executable, __file__, "--one", str(side), str(int(tiled)), str(threads)],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        return f"{label} failed | - | - | {done.stderr.strip().splitlines()[-1][:120]} |"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    ratio = estimate / result["peak"]
    # Seconds depend on the threads; the peak does not (one decode at a time either way).
    note = "" if threads == 2 else f"{threads} thread{'s' if threads > 1 else ''}"
    return f"{label} {result['peak'] / GIB:.2f} | {ratio:.2f} | {result['seconds']:.0f} | {note} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1024,2048,4096")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the decode (default 2)")
    parser.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], bool(args.one[1]), args.one[2])))
        return
    from selfcascade.models.memory import free_memory

    available = free_memory("cpu")
    sizes = [int(s) for s in args.sizes.split(",")]
    kept = [line for line in (Path(args.out).read_text().splitlines() if Path(args.out).is_file() else [])
            if line.startswith("| ") and line.split("|")[1].strip().split("x")[0].isdigit()
            and int(line.split("|")[1].strip().split("x")[0]) not in sizes]
    lines = ["SDXL VAE architecture (configs/sd_vae.json, scaling 0.13025, sample size 1024), random "
             "weights, float32, CPU, 2 threads unless the note says otherwise; tiles of 512 px; available RAM at "
             f"start {available / GIB:.1f} GiB. "
             "Peak = ru_maxrss of a fresh process minus its RSS after imports (weights included).", "",
             "| image | decode | estimate (GiB) | measured peak (GiB) | estimate / measured | seconds | note |",
             "|---|---|---|---|---|---|---|", *kept]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for side in sizes:
        for tiled in (False, True) if side < 4096 else (True, False):
            lines.append(run_case(side, tiled, available, args.threads))
            print(lines[-1], flush=True)
            header, rows = lines[:4], sorted(lines[4:], key=lambda row: int(row.split("|")[1].strip().split("x")[0]))
            Path(args.out).write_text("\n".join(header + rows) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
