"""CLI progress: bars on a terminal, one line per stage (or every N training steps) elsewhere, none when quiet."""

import io
import os
import pty
import select
import subprocess
import sys

import torch

from selfcascade.cascade.pipeline import StageDone, StageStarted, StepDone
from selfcascade.training.loop import TrainingStep
from selfcascade.ui.progress import StageProgress, TrainProgress, progress_mode


class Terminal(io.StringIO):
    def isatty(self):
        return True


def stage_events(stages=2, steps=3):
    for stage in range(stages):
        size = (64 * 2**stage, 64 * 2**stage)
        yield StageStarted(stage, stages, size, steps, "-" if stage == 0 else "frequency-split")
        for step in range(1, steps + 1):
            yield StepDone(stage, step, steps, torch.zeros(1))
        yield StageDone(stage, stages, size, 0.1, torch.zeros(1), None)


def test_modes():
    assert progress_mode(False, Terminal()) == "bars" and progress_mode(False, io.StringIO()) == "lines"
    assert progress_mode(True, Terminal()) == "quiet"


def test_stage_progress_per_mode():
    streams = {mode: Terminal() for mode in ("bars", "lines", "quiet")}
    for mode, stream in streams.items():
        progress = StageProgress(mode, stream)
        for event in stage_events():
            progress(event)
        progress.close()
    bars, lines = streams["bars"].getvalue(), streams["lines"].getvalue()
    assert "stage 2/2 128x128, frequency-split" in bars and "3/3" in bars and "\r" in bars
    assert lines.splitlines() == ["stage 1/2: 64x64, 3 steps, upper-stage denoising: -",
                                  "stage 2/2: 128x128, 3 steps, upper-stage denoising: frequency-split"]
    assert streams["quiet"].getvalue() == ""


def test_train_progress_per_mode():
    streams = {mode: Terminal() for mode in ("bars", "lines", "quiet")}
    for mode, stream in streams.items():
        progress = TrainProgress(mode, every=4, stream=stream)
        for step in range(1, 11):
            progress.step(TrainingStep(step, 10, 0.5 / step, 2.0, (10 - step) / 2.0))
        progress.close()
    bars, lines = streams["bars"].getvalue(), streams["lines"].getvalue()
    assert "train" in bars and "10/10" in bars and "loss=0.0500" in bars
    assert [line.split()[1] for line in lines.splitlines()] == ["4/10", "8/10", "10/10"]
    assert "loss 0.0500" in lines and "eta 0 s" in lines
    assert streams["quiet"].getvalue() == ""


def test_generate_draws_bars_on_a_terminal(tmp_path):
    """A real pseudo-terminal as stderr: tqdm bars; the same command with --quiet prints no progress."""
    outputs = {}
    for quiet in (False, True):
        leader, follower = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "selfcascade", "generate", "--prompt", "a red circle",
                                    "--size", "128x128", "--steps", "3", "--out", str(tmp_path / "x.png"),
                                    *(["--quiet"] if quiet else [])],
                                   stderr=follower, stdout=subprocess.DEVNULL,
                                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
        os.close(follower)
        chunks = []
        while True:  # read while it runs: a full terminal buffer would block the child
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif process.poll() is not None:
                break
        process.wait(timeout=300)
        os.close(leader)
        assert process.returncode == 0
        outputs[quiet] = b"".join(chunks).decode(errors="replace")
    assert "stage 1/2 64x64" in outputs[False] and "3/3" in outputs[False] and "\r" in outputs[False]
    assert "stage" not in outputs[True] and "memory:" in outputs[True]
