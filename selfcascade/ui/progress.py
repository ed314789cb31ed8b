"""Progress on the command line: tqdm bars on a terminal, plain lines in logs and pipes, nothing when quiet.

A bar redraws with carriage returns, which a log file or CI output keeps as one unreadable line, so off a
terminal (stderr not a TTY) the same events print one line per stage (generate, video) or one line every
N steps (train). Messages that are not progress (the memory plan, the training layout, notes, the file
written) print in every mode.
"""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO

from tqdm import tqdm

MODES = ("bars", "lines", "quiet")


def progress_mode(quiet: bool, stream: TextIO | None = None) -> str:
    """quiet, else bars when `stream` (stderr) is a terminal, else lines."""
    if quiet:
        return "quiet"
    stream = stream or sys.stderr
    return "bars" if getattr(stream, "isatty", lambda: False)() else "lines"


def _bar(stream: TextIO, **options) -> tqdm:
    """A tqdm bar sized to the terminal; 80x24 when the terminal reports no size (tqdm then draws nothing,
    e.g. on a pseudo-terminal whose size was never set)."""
    try:
        size = os.get_terminal_size(stream.fileno())
        shape = {"ncols": size.columns or 80, "nrows": size.lines or 24}
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):  # not a terminal file (tests)
        shape = {}
    return tqdm(file=stream, unit="step", **shape, **options)


def _stage_text(event) -> str:
    return (f"stage {event.stage + 1}/{event.stages}: {event.size[0]}x{event.size[1]}, {event.steps} steps, "
            f"upper-stage denoising: {event.strategy}")


class StageProgress:
    """Cascade events (selfcascade.cascade.pipeline) -> a bar of denoising steps per stage, or a line per stage."""

    def __init__(self, mode: str, stream: TextIO | None = None):
        self.mode, self.stream, self.bar = mode, stream or sys.stderr, None

    def __call__(self, event) -> None:
        from selfcascade.cascade.pipeline import StageDone, StageStarted, StepDone

        if isinstance(event, StageStarted):
            self.close()
            if self.mode == "lines":
                print(_stage_text(event), file=self.stream, flush=True)
            elif self.mode == "bars":
                strategy = "" if event.strategy == "-" else f", {event.strategy}"
                self.bar = _bar(self.stream, total=event.steps,
                                desc=f"stage {event.stage + 1}/{event.stages} {event.size[0]}x{event.size[1]}"
                                     f"{strategy}")
        elif isinstance(event, StepDone) and self.bar is not None:
            self.bar.update(event.step - self.bar.n)
        elif isinstance(event, StageDone):
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TrainProgress:
    """Training events (selfcascade.training.loop) -> one bar with the loss (tqdm adds rate and ETA), or a line
    every `every` steps and at the last."""

    def __init__(self, mode: str, every: int = 10, stream: TextIO | None = None):
        self.mode, self.every, self.stream, self.bar = mode, max(1, every), stream or sys.stderr, None

    def step(self, event) -> None:
        if self.mode == "bars":
            if self.bar is None:
                self.bar = _bar(self.stream, total=event.steps, desc="train")
            self.bar.set_postfix(loss=f"{event.loss:.4f}", refresh=False)
            self.bar.update(event.step - self.bar.n)
        elif self.mode == "lines" and (event.step % self.every == 0 or event.step == event.steps):
            print(f"step {event.step}/{event.steps}  loss {event.loss:.4f}  {event.steps_per_second:.2f} steps/s"
                  f"  eta {event.eta_seconds:.0f} s", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
