"""The command line's arguments: the parser of `generate`, `video` and `train` (exit 2 with one line on stderr for
bad arguments, no usage dump)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selfcascade.cascade.batch import MAX_IMAGES_PER_PROMPT
from selfcascade.cascade.request import DEFAULT_FREE_INIT
from selfcascade.diffusion.motion_steering import DEFAULT_STEERED_FRACTION, DEFAULT_TRAVEL, MOTION_CHOICES

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump: scripts read stderr
        print(f"selfcascade: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _add_sampling(command, image: bool) -> None:
    """Options `generate` and `video` share: model, mode, stages, the sampling and the device settings."""
    from selfcascade.cascade.request import MODES, PIVOT_UPSAMPLINGS
    from selfcascade.diffusion.upper_stage import STRATEGIES, STRATEGY_ALIASES, canonical_strategy
    from selfcascade.models.placement import OFFLOAD_CHOICES
    from selfcascade.models.precision import DTYPE_CHOICES
    from selfcascade.models.vae import TILING_CHOICES

    if image:  # one prompt, or a file of them (a batch: selfcascade.cascade.batch)
        prompt = command.add_mutually_exclusive_group(required=True)
        prompt.add_argument("--prompt")
        prompt.add_argument("--prompts", metavar="FILE",
                            help="text file, one prompt a line (blank lines and lines starting with # skipped)")
    else:
        command.add_argument("--prompt", required=True)
    command.add_argument("--size", required=True, help="WIDTHxHEIGHT of the result, e.g. 256x256")
    default_model = "embedded" if image else "shapes-video (embedded)"
    model_help = "hub id, local diffusers folder" + (" or single-file checkpoint (.safetensors)" if image else "")
    command.add_argument("--model", default=None, help=f"{model_help} (default: {default_model})")
    command.add_argument("--mode", default="tuning-free", choices=MODES)
    command.add_argument("--stages", default="", help="stage sizes, e.g. 64,128,256 (default: automatic)")
    command.add_argument("--steps", type=int, default=None)
    command.add_argument("--strength", type=float, default=None, help="re-noise level K/T of stages >= 1")
    command.add_argument("--guidance", type=float, default=None)
    command.add_argument("--upper-guidance", type=float, default=None,
                         help="guidance of the stages after the first (default: the preset's, else --guidance)")
    command.add_argument("--negative", default="", help="negative prompt")
    command.add_argument("--seed", type=int, default=0,
                         help="seed (of a batch's first image: image k of the batch gets seed + k)" if image else None)
    command.add_argument("--scheduler", default=None, help="ddpm, ddim, euler, euler-a or dpm++")
    command.add_argument("--upper", default=None, choices=STRATEGIES, type=canonical_strategy,
                         help="upper-stage denoising strategy (default: the model's measured best; plain with "
                              "--mode direct, the paper's baseline); earlier names are accepted: "
                              + ", ".join(f"{old} = {new}" for old, new in STRATEGY_ALIASES.items()))
    command.add_argument("--anchor", type=float, default=None,
                         help="pivot anchoring: weight 0..1 of the pivot's low band at upper stages (0: off)")
    command.add_argument("--pivot-up", default=None, choices=PIVOT_UPSAMPLINGS,
                         help="how a pivot reaches the next stage: latent (bilinear, the paper's) or pixel "
                              "(decode, Lanczos, encode); default: the preset's, else latent")
    command.add_argument("--consensus", type=int, default=None, metavar="K",
                         help="pivot consensus: K clean estimates of the first stage averaged into its pivot "
                              "(images; 0: off; default: the preset's, else the model folder's)")
    command.add_argument("--max-side", type=int, default=None, help="refuse sizes above this many px per side")
    command.add_argument("--adapter", default=None, help="trained upsamplers (folder or .safetensors) for --mode tuned "
                         "(default: the one shipped for the embedded model, shapes-adapter or shapes-video-adapter)")
    command.add_argument("--lora", action="append", default=None, metavar="PATH_OR_ID[:SCALE]",
                         help="a LoRA (folder, .safetensors file or hub id) on the base model at SCALE (default 1); "
                              "repeat for several")
    command.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                         help="auto: float16 on a GPU, float32 on the CPU (a VAE with force_upcast runs in float32)")
    command.add_argument("--vae", default=None, metavar="ID_OR_PATH",
                         help="VAE to use instead of the model's own, e.g. madebyollin/sdxl-vae-fp16-fix")
    command.add_argument("--vae-tiling", default="auto", choices=TILING_CHOICES,
                         help="decode in tiles (auto: above 1024x1024)")
    command.add_argument("--offload", default="auto", choices=OFFLOAD_CHOICES,
                         help="model CPU offload on a GPU (auto: when the weights leave too little room)")
    command.add_argument("--quiet", action="store_true",
                         help="no progress (bars on a terminal, else a line per stage)")


def _add_generate(commands) -> None:
    command = commands.add_parser("generate", help="make an image several times the model's training size")
    _add_sampling(command, image=True)
    command.add_argument("--config", default=None, metavar="FOLDER_OR_ID",
                         help="with a single-file --model: the diffusers layout of the same family, for its configs "
                              "(default: the family's hub repo, which needs the network)")
    out = command.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="PNG file to write (parameters in its metadata)")
    out.add_argument("--out-dir", metavar="DIR", help="folder for the PNGs of a batch, named NNNNN-<prompt>.png "
                     "(needed with --prompts or --num-images above 1)")
    command.add_argument("--num-images", type=int, default=1, metavar="N",
                         help=f"images per prompt, 1 to {MAX_IMAGES_PER_PROMPT} (default 1)")
    command.add_argument("--image", metavar="FILE", default=None,
                         help="upscale this picture: it becomes the first stage's result (resized to it) and the "
                              "cascade continues from it")
    command.add_argument("--previews", default=None, help="folder for each stage's decoded pivot (a batch: a "
                         "sub-folder per image)")


def _add_video(commands) -> None:
    command = commands.add_parser("video", help="make a video several times the video model's training size")
    _add_sampling(command, image=False)
    command.add_argument("--frames", type=int, default=16, help="frame count (kept at every stage)")
    command.add_argument("--fps", type=float, default=8, help="frames per second of the written file")
    command.add_argument("--out", required=True, help=".mp4 (H.264), .gif or .webp to write (parameters inside)")
    command.add_argument("--previews", default=None, help="folder for each stage's strip of frames")
    command.add_argument("--free-init", type=int, default=DEFAULT_FREE_INIT,
                         help="extra first-stage passes, each re-initialised from the last one's low frequencies "
                              f"(FreeInit: steadier frames, one more first stage each; default {DEFAULT_FREE_INIT})")
    command.add_argument("--motion", default="auto", choices=MOTION_CHOICES,
                         help="steer the first stage's layout along a direction: auto (the prompt's "
                              "'moving right/left/up/down'; the default), none, or a direction")
    command.add_argument("--travel", type=float, default=DEFAULT_TRAVEL,
                         help=f"how far the steered layout travels over the clip, fraction of the side "
                              f"(default {DEFAULT_TRAVEL})")
    command.add_argument("--steer", type=float, default=DEFAULT_STEERED_FRACTION,
                         help="share of the first stage's steps, from the noisiest, that are steered (0: off; "
                              f"default {DEFAULT_STEERED_FRACTION})")


def _add_train(commands) -> None:
    from selfcascade.adapters.designs import DEFAULT_DESIGN, DEFAULT_OBJECTIVE, DESIGNS, OBJECTIVES
    from selfcascade.training.distributed import MIXED_PRECISION_CHOICES

    command = commands.add_parser("train", help="train the time-aware feature upsamplers (an adapter)")
    command.add_argument("--images", required=True,
                         help="folder of training images (captions: .txt beside); for a video model, of short "
                              "videos (mp4, gif, ...) or sub-folders of frames, or one folder of frames")
    command.add_argument("--frames", type=int, default=8, help="video models: frames per training clip")
    command.add_argument("--size", required=True, help="stage size trained for, e.g. 128x128 (pivot: half)")
    command.add_argument("--steps", type=int, default=200)
    command.add_argument("--out", required=True, help="adapter folder to write")
    command.add_argument("--model", default=None)
    command.add_argument("--lr", type=float, default=1e-3)
    command.add_argument("--batch", type=int, default=4)
    command.add_argument("--caption", default="", help="caption for images without a .txt")
    command.add_argument("--strength", type=float, default=0.5, help="largest timestep trained, as K/T")
    command.add_argument("--objective", default=DEFAULT_OBJECTIVE, choices=OBJECTIVES,
                         help="restore: learn to redraw what the pivot lost, from z_t as an upper stage starts "
                              "(default); keep: the paper's Algorithm 1, z_t from the image itself")
    command.add_argument("--design", default=DEFAULT_DESIGN, choices=DESIGNS,
                         help="mixed: convolutions across channels (default); shared: the paper's tiny "
                              "channel-shared filters")
    command.add_argument("--width", type=int, default=None, help="filters per upsampler convolution "
                         "(default: 8 mixed, 4 shared)")
    command.add_argument("--resume", default=None, help="adapter to continue training")
    command.add_argument("--seed", type=int, default=0, help="seed of the main process (others derive theirs)")
    command.add_argument("--mixed-precision", default=None, choices=MIXED_PRECISION_CHOICES,
                         help="accelerate's mixed precision (fp16 needs a CUDA GPU; default: the accelerate "
                              "launch config's, else no)")
    command.add_argument("--grad-accum", type=int, default=None, metavar="N",
                         help="micro-batches per optimizer step (effective batch = batch x processes x N)")
    command.add_argument("--quiet", action="store_true", help="no progress (a bar on a terminal, else lines)")
    command.add_argument("--log-every", type=int, default=10, metavar="N",
                         help="off a terminal, print a progress line every N steps")


def program_name() -> str:
    """How the user started us, for usage lines: `selfcascade` (the installed command) or `python -m selfcascade`."""
    started = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "selfcascade" if started == "selfcascade" else "python -m selfcascade"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=program_name(), description="Self-Cascade diffusion (arXiv 2402.10491)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_generate(commands)
    _add_video(commands)
    _add_train(commands)
    return parser
