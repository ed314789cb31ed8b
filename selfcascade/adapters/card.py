"""What an adapter file says about itself: flat safetensors metadata and a short model card (README.md).

Both are read by people (a safetensors header viewer, the Hub's file page), so they state what the adapter
was trained for in plain values: base model by its public name (never a path on the training machine),
family, latent channels, stage size, timestep range, steps, final loss, date. The steps are those actually
trained; a run that did not finish them says so ("stopped at step 166 of 400", "checkpoint at step 100 of
400"). The full record stays in the JSON config (`selfcascade_config`), which is what loading reads.
"""

from __future__ import annotations

import json
from pathlib import Path

PAPER = "Guo, He et al., *Make a Cheap Scaling: A Self-Cascade Diffusion Model for Higher-Resolution " \
        "Adaptation*, arXiv 2402.10491"


def _size(value) -> str:
    return "x".join(str(side) for side in value) if value else "-"


OBJECTIVE_WORDS = {"keep": "keep: the paper's Algorithm 1 (z_t noised from the image)",
                   "restore": "restore: z_t noised from the up-sampled pivot, loss on the clean estimate"}


def _facts(config: dict) -> dict[str, str]:
    """The plain-text facts of an adapter's config, in the order a reader wants them."""
    training = config.get("training") or {}
    facts = {"base_model": config.get("base_model") or "", "base_family": config.get("base_family") or "",
             "latent_channels": str(config.get("latent_channels") or ""),
             "stage_size": _size(config.get("stage_size"))}
    if training.get("timesteps"):
        first, last = training["timesteps"]
        facts["timesteps"] = f"{first}-{last}"
    if training.get("final_loss") is not None:
        facts["final_loss"] = f"{training['final_loss']:.5f}"
    for key in ("strength", "steps", "planned_steps", "ended", "effective_batch", "date"):
        if training.get(key) is not None:
            facts[key] = str(training[key])
    return {key: value for key, value in facts.items() if value not in ("", "-")}


ENDED_WORDS = {"stopped": "stopped at step", "checkpoint": "checkpoint at step"}


def _unfinished(facts: dict[str, str]) -> str:
    """'stopped at step 166 of 400; ' for a run that did not finish its steps (cancelled, or a checkpoint saved
    on the way, which is what a killed run leaves); '' for a finished one."""
    if "planned_steps" not in facts:
        return ""
    words = ENDED_WORDS.get(facts.get("ended", ""), "saved at step")
    return f"{words} {facts['steps']} of {facts['planned_steps']}; "


def safetensors_metadata(config: dict) -> dict[str, str]:
    """The single file's header: the full config as JSON (what loading reads) and the facts, flat."""
    return {"selfcascade_config": json.dumps(config), **{f"selfcascade_{k}": v for k, v in _facts(config).items()}}


def model_card(config: dict, parameters: int) -> str:
    """A short README.md for the adapter folder."""
    facts, training = _facts(config), config.get("training") or {}
    base = facts.get("base_model", "an unrecorded base model")
    front = ["---", "tags: [self-cascade, diffusion, super-resolution]"]
    if base.count("/") == 1 and not base.startswith((".", "/")):  # a hub id: the Hub links the base model
        front.append(f"base_model: {base}")
    rows = [("base model", f"{base} ({facts.get('base_family', 'family not recorded')}, "
                           f"{facts.get('latent_channels', '?')}-channel latents)"),
            ("stage size", f"{facts.get('stage_size', '-')} (pivot at half the size per side; serves every 2x "
                           "stage)")]
    if {"timesteps", "steps", "final_loss", "date"} <= facts.keys():
        rows += [("timesteps", f"{facts['timesteps']} (strength {facts.get('strength', '?')})"),
                 ("steps", f"{facts['steps']} ({_unfinished(facts)}effective batch "
                           f"{facts.get('effective_batch', '?')}: {training.get('batch')} x "
                           f"{training.get('processes')} process(es) x {training.get('grad_accum')} accumulation)"),
                 ("final loss", f"{facts['final_loss']} (mean of the last {training.get('final_loss_steps')} "
                                "steps)"),
                 ("mixed precision", str(training.get("mixed_precision", "no"))),
                 *([("clip length", f"{training['frames']} frames (a video model's clips)")]
                   if training.get("frames") else []),
                 ("trained", facts["date"])]
    design = config.get("design", "shared")
    rows.append(("parameters", f"{parameters:,} ({design} design, width {config.get('width', '?')})"))
    if training.get("objective"):
        rows.append(("objective", OBJECTIVE_WORDS.get(training["objective"], training["objective"])))
    model_option = "" if base in ("embedded", "an unrecorded base model") else f"--model {base} "
    usage = (f"python -m selfcascade video {model_option}--mode tuned --adapter <this folder> --prompt \"...\" "
             "--frames 16 --size 256x256 --out result.mp4" if training.get("frames") else
             f"python -m selfcascade generate {model_option}--mode tuned --adapter <this folder> --prompt \"...\" "
             "--size 512x512 --out result.png")
    return "\n".join([
        *front, "---", "", f"# Self-Cascade upsamplers for {base}", "",
        "Time-aware feature upsamplers (Eq. 6) trained as in Algorithm 1 of Self-Cascade "
        f"({PAPER}). The base model stays frozen; these weights add the up-sampled features of the previous "
        "stage's result to its UNet's skip connections in the *tuned* mode.", "",
        "| | |", "|---|---|", *[f"| {name} | {value} |" for name, value in rows], "",
        "## Use", "", "```bash",
        usage, "```", "",
        "`adapter.safetensors` holds the weights and this record in its metadata; `config.json` + "
        "`diffusion_pytorch_model.safetensors` are the same in diffusers' layout. Loading the adapter with "
        "another base model family, latent layout or UNet is refused.", ""])


def write_model_card(folder: Path, config: dict, parameters: int) -> Path:
    path = Path(folder) / "README.md"
    path.write_text(model_card(config, parameters))
    return path
