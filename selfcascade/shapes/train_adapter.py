"""Train the embedded models' shipped adapters (time-aware upsamplers) on renders of the shapes world.

    python -m selfcascade.shapes.train_adapter --out selfcascade/assets/shapes-adapter --strength 0.3 --steps 1200 \
        --lr 1e-3
    python -m selfcascade.shapes.train_adapter --video --out selfcascade/assets/shapes-video-adapter

Renders captioned scenes (with --video: clips of shapes in motion, folders of frames) at the 128 px stage size
(the 64 -> 128 step; the same 2x upsamplers serve every later 2x stage), then runs Algorithm 1
(selfcascade.training.loop) with the embedded model (or the embedded shapes-video model) frozen.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from selfcascade.adapters.designs import DEFAULT_DESIGN, DEFAULT_OBJECTIVE, DESIGNS, OBJECTIVES
from selfcascade.errors import InvalidRequest
from selfcascade.shapes.world import caption, random_scene, render
from selfcascade.training.loop import TrainingDone, TrainingRequest, TrainingStep, train
from selfcascade.training.request import MAX_TRAIN_FRAMES, MAX_TRAIN_SIDE


def _check_render(size: int, frames: int = 1) -> None:
    """Renders are as large as asked: bounded by the training caps (a Space once rendered at 100000 px and ran
    out of memory), before anything is drawn or written."""
    if not 1 <= size <= MAX_TRAIN_SIDE:
        raise InvalidRequest(f"example renders must be from 1 to {MAX_TRAIN_SIDE} px per side, not {size}")
    if not 1 <= frames <= MAX_TRAIN_FRAMES:
        raise InvalidRequest(f"example clips must have from 1 to {MAX_TRAIN_FRAMES} frames, not {frames}")


def render_examples(folder: Path, count: int, size: int, seed: int) -> list[str]:
    """`count` scenes at `size` px (at most training.MAX_TRAIN_SIDE) as PNGs with their captions in .txt files
    beside them."""
    _check_render(size)
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        scene = random_scene(rng)
        path = folder / f"scene{index:04d}.png"
        render(scene, size).save(path)
        path.with_suffix(".txt").write_text(caption(scene, rng))
        paths.append(str(path))
    return paths


def render_example_clips(folder: Path, count: int, size: int, frames: int, seed: int) -> list[str]:
    """`count` clips of the shapes world in motion at `size` px, each a folder of PNG frames with its caption
    in the .txt of the same name beside it (GIF and WebP writers merge a still clip's identical frames).
    `size` and `frames` are bounded as the training's (training.MAX_TRAIN_SIDE, MAX_TRAIN_FRAMES)."""
    _check_render(size, frames)
    from selfcascade.shapes.motion import DIRECTIONS, motion_caption, random_clip_scene, render_clip

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    directions = [None, *DIRECTIONS]
    paths = []
    for index in range(count):
        direction = directions[index % len(directions)]
        scene = random_clip_scene(rng, None, direction)
        clip_folder = folder / f"clip{index:04d}"
        clip_folder.mkdir(exist_ok=True)
        for number, frame in enumerate(render_clip(scene, direction, frames, size)):
            frame.save(clip_folder / f"frame{number:03d}.png")
        clip_folder.with_suffix(".txt").write_text(motion_caption(scene, direction, rng))
        paths.append(str(clip_folder))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="selfcascade/assets/shapes-adapter")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", action="store_true", help="the shapes-video model's adapter, on clips")
    parser.add_argument("--frames", type=int, default=8, help="with --video: frames per clip")
    parser.add_argument("--objective", default=DEFAULT_OBJECTIVE, choices=OBJECTIVES,
                        help="restore (default) or keep (the paper's Algorithm 1)")
    parser.add_argument("--strength", type=float, default=0.5, help="largest trained timestep / T")
    parser.add_argument("--width", type=int, default=None, help="filters per convolution (default: the design's)")
    parser.add_argument("--design", default=DEFAULT_DESIGN, choices=DESIGNS,
                        help="mixed (default: convolutions across channels) or shared (channel-shared filters)")
    parser.add_argument("--render-sizes", default=None,
                        help="images: comma-separated render sizes, --images scenes each (default: --size)")
    parser.add_argument("--size", type=int, default=128, help="training stage size in px (its pivot is half)")
    parser.add_argument("--model", default=None,
                        help="base model folder (default: the embedded shapes model, or shapes-video with --video)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        if args.video:
            paths = render_example_clips(Path(folder), args.images, args.size, args.frames, args.seed)
        else:  # scenes rendered at each size; larger ones give random crops at the stage size (objects bigger)
            sizes = [int(size) for size in (args.render_sizes or str(args.size)).split(",")]
            paths = [path for n, size in enumerate(sizes)
                     for path in render_examples(Path(folder) / str(size), args.images, size, args.seed + n)]
        request = TrainingRequest(images=paths, size=(args.size, args.size), steps=args.steps, learning_rate=args.lr,
                                  batch=args.batch, out=args.out, seed=args.seed, frames=args.frames,
                                  model=args.model or ("shapes-video" if args.video else None),
                                  objective=args.objective, strength=args.strength, width=args.width,
                                  design=args.design)
        for event in train(request):
            if isinstance(event, TrainingStep) and event.step % 20 == 0:
                print(f"step {event.step}/{event.steps} loss {event.loss:.4f} "
                      f"{event.steps_per_second:.2f} steps/s", flush=True)
            elif isinstance(event, TrainingDone):
                print(f"wrote {event.path} in {event.seconds:.0f} s")


if __name__ == "__main__":
    main()
