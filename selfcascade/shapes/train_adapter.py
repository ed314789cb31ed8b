"""Train the embedded model's shipped adapter (time-aware upsamplers) on renders of the shapes world.

    python -m selfcascade.shapes.train_adapter --out assets/shapes-adapter

Renders captioned scenes at the 128 px stage size (the 64 -> 128 step; the same 2x upsamplers serve every
later 2x stage), then runs Algorithm 1 (selfcascade.training) with the embedded model frozen.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from ..training import TrainingDone, TrainingRequest, TrainingStep, train
from .world import caption, random_scene, render


def render_examples(folder: Path, count: int, size: int, seed: int) -> list[str]:
    """`count` scenes at `size` px as PNGs with their captions in .txt files beside them."""
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="assets/shapes-adapter")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        paths = render_examples(Path(folder), args.images, 128, args.seed)
        request = TrainingRequest(images=paths, size=(128, 128), steps=args.steps, learning_rate=args.lr,
                                  batch=args.batch, out=args.out, seed=args.seed)
        for event in train(request):
            if isinstance(event, TrainingStep) and event.step % 20 == 0:
                print(f"step {event.step}/{event.steps} loss {event.loss:.4f} "
                      f"{event.steps_per_second:.2f} steps/s", flush=True)
            elif isinstance(event, TrainingDone):
                print(f"wrote {event.path} in {event.seconds:.0f} s")


if __name__ == "__main__":
    main()
