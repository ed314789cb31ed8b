"""Size of the time-aware feature upsamplers, both designs, on the embedded, SD 2.1 and SDXL UNet layouts
(the paper: 0.002M).

    python benchmarks/tuned.py

Counts trainable parameters of a fresh adapter built for each UNet (the real SD 2.1 / SDXL configurations
in configs/, instantiated on the meta device: no weights, no download). The tuned mode's quality
and its time against the tuning-free cascade are measured by benchmarks/composition.py, side by side with
the other modes. Writes benchmarks/results/tuned.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402

from benchmarks.judging import publish  # noqa: E402
from selfcascade.adapters.designs import default_width  # noqa: E402
from selfcascade.adapters.upsampler import new_upsamplers  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402

CONFIGS = ROOT / "configs"


def parameter_counts(embedded) -> list[tuple[str, int, int, int]]:
    """(architecture, UNet parameters, shared-design upsamplers, mixed-design upsamplers at default widths)."""
    unets = [("embedded shapes model", embedded.unet)]
    for name, file in (("SD 2.1", "sd21_unet.json"), ("SDXL", "sdxl_unet.json")):
        if (CONFIGS / file).is_file():
            with torch.device("meta"):
                unets.append((name, UNet2DConditionModel.from_config(json.loads((CONFIGS / file).read_text()))))

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    return [(name, count(unet), *(count(new_upsamplers(unet, name, default_width(design), design))
                                  for design in ("shared", "mixed"))) for name, unet in unets]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tuned.md"))
    args = parser.parse_args()
    lines = [f"| architecture | UNet parameters | upsamplers, shared (width {default_width('shared')}) | "
             f"upsamplers, mixed (width {default_width('mixed')}) |", "|---|---|---|---|"]
    lines += [f"| {name} | {unet / 1e6:.1f}M | {shared:,} ({shared / 1e6:.4f}M) | {mixed:,} ({mixed / 1e6:.3f}M, "
              f"{100 * mixed / unet:.2f}% of the UNet) |"
              for name, unet, shared, mixed in parameter_counts(load_model(None))]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
