"""Shared by the benchmarks: fixed prompt x seed pairs, the strict judge with edge measures, and a table.

Every benchmark scores images the same way: `selfcascade.shapes.detector.check` (strict: one object of the
prompt's colour, shape, size, background, no stray region >= 1% of the image) and the edge measures of
`selfcascade.shapes.edges` (boundary sharpness vs a ground-truth render at that size, roughness, grain).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from selfcascade.shapes.detector import FAILURE_KINDS, check
from selfcascade.shapes.edges import measure
from selfcascade.shapes.world import BACKGROUNDS, COLOURS, SHAPES, SIZES, PromptSpec


def prompt_seed_pairs(count: int, seed: int = 1234, first_seed: int = 1000) -> list[tuple[PromptSpec, int]]:
    """Fixed pairs: colour and shape always named, size and background half the time each."""
    rng = random.Random(seed)
    pairs = []
    for index in range(count):
        spec = PromptSpec(shape=rng.choice(SHAPES), colour=rng.choice(list(COLOURS)),
                          size_word=rng.choice(SIZES) if rng.random() < 0.5 else None,
                          background=rng.choice(list(BACKGROUNDS)) if rng.random() < 0.5 else None)
        pairs.append((spec, first_seed + index))
    return pairs


@dataclass
class Tally:
    """Scores of one (size, mode) cell over many images."""

    images: int = 0
    correct: int = 0
    seconds: float = 0.0
    failures: Counter = field(default_factory=Counter)
    sharpness: list[float] = field(default_factory=list)
    roughness: list[float] = field(default_factory=list)
    grain: list[float] = field(default_factory=list)
    verdicts: list[tuple[str, bool, list[str]]] = field(default_factory=list)  # (prompt, correct, reasons)

    def add(self, image: Image.Image, spec: PromptSpec, seconds: float) -> bool:
        verdict = check(image, spec)
        report = measure(image, spec)
        self.images += 1
        self.correct += verdict.correct
        self.seconds += seconds
        self.failures.update(verdict.failures)
        for values, value in ((self.sharpness, report.sharpness), (self.roughness, report.roughness),
                              (self.grain, report.grain)):
            if value is not None:
                values.append(value)
        self.verdicts.append((spec.to_prompt(), verdict.correct, list(verdict.reasons)))
        return verdict.correct

    @property
    def fraction(self) -> float:
        return self.correct / max(1, self.images)

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / max(1, self.images)

    def failure_text(self) -> str:
        return ", ".join(f"{kind} {self.failures[kind]}" for kind in FAILURE_KINDS if self.failures[kind]) or "-"


def size_label(width: int, height: int) -> str:
    """'256' for a square (the names the square sheets and tables always had), '256x192' otherwise."""
    return f"{width}" if width == height else f"{width}x{height}"


def mean(values: list[float]) -> str:
    return f"{np.mean(values):.3f}" if values else "-"


TABLE_HEADER = ("| size | mode | upper stages | correct (strict) | failures | edge sharpness vs truth | "
                "edge roughness | background grain | s / image | time vs direct |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n")


def table_row(size: str, mode: str, upper: str, tally: Tally, direct_seconds: float | None) -> str:
    ratio = f"{tally.seconds / direct_seconds:.2f}x" if direct_seconds else "-"
    return (f"| {size} | {mode} | {upper} | {100 * tally.fraction:.1f}% ({tally.correct}/{tally.images}) | "
            f"{tally.failure_text()} | {mean(tally.sharpness)} | {mean(tally.roughness)} | {mean(tally.grain)} | "
            f"{tally.seconds_per_image:.2f} | {ratio} |\n")


def marked(image: Image.Image, correct: bool) -> Image.Image:
    """A copy of `image` framed green (judged correct) or red, so a sheet shows each verdict to check by eye."""
    framed = image.convert("RGB")
    width = max(2, framed.width // 64)
    ImageDraw.Draw(framed).rectangle((0, 0, framed.width - 1, framed.height - 1), width=width,
                                     outline=(0, 170, 0) if correct else (220, 0, 0))
    return framed


def contact_sheet(rows: list[tuple[str, list[Image.Image]]], path: Path, cell: int = 192) -> None:
    """A labelled grid: one row per label, its images left to right (what the README shows)."""
    label_width = 150
    columns = max(len(images) for _, images in rows)
    canvas = Image.new("RGB", (label_width + columns * (cell + 4), len(rows) * (cell + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, images) in enumerate(rows):
        y = r * (cell + 4)
        draw.multiline_text((4, y + cell // 2 - 10), label.replace(" ", "\n", 1), fill="black")
        for c, image in enumerate(images):
            scale = cell / max(image.size)  # non-square images keep their shape, centred in the cell
            shown = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
            canvas.paste(shown, (label_width + c * (cell + 4) + (cell - shown.width) // 2,
                                 y + (cell - shown.height) // 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def publish(table: str, out: str | Path) -> None:
    """Print a results table and write it where the figures of docs/results.md are copied from."""
    print(table)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(table)
