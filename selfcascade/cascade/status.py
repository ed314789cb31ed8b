"""One line per cascade event, for every front end (the app's status and gallery captions, the CLI's progress):
what a run is doing, said the same way wherever it is shown."""

from __future__ import annotations

from selfcascade.cascade.pipeline import StageDone, StageStarted, StepDone


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def stage_started(event: StageStarted, frames: int | None = None) -> str:
    """'Stage 2/3: 128x128, 20 steps (hidiffusion-pyramid)'; a video's with its frame count."""
    what = f"{frames} frames at {_size(event.size)}" if frames else _size(event.size)
    return f"Stage {event.stage + 1}/{event.stages}: {what}, {event.steps} steps ({event.strategy})"


def step_done(stage: StageStarted, event: StepDone) -> str:
    """'Stage 2/3 (128x128): step 7/20'."""
    return f"Stage {stage.stage + 1}/{stage.stages} ({_size(stage.size)}): step {event.step}/{event.steps}"


def stage_done(event: StageDone) -> str:
    """A stage pivot's caption: 'stage 1: 128x128, 3.2 s'."""
    return f"stage {event.stage}: {_size(event.size)}, {event.seconds:.1f} s"
