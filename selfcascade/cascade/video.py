"""The video Python API beside `cascade.generate`: Self-Cascade on a text-to-video model, then a file.

    for event in generate_video(VideoRequest("a red circle moving right", 256, 256, frames=16)):
        ...                                   # the same StageStarted / StepDone / StageDone / Finished events
    result = make_video(request, "out.mp4")   # run to the end and write H.264 (or .gif / .webp)

Frames are folded into the batch for every spatial step (models/video.py); the frame count is the request's
at every stage. `model=None` loads the embedded shapes-video model.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from selfcascade.cascade.pipeline import Event, Finished, generate
from selfcascade.cascade.request import VideoRequest
from selfcascade.errors import InvalidRequest
from selfcascade.files.video import check_video_path, write_video
from selfcascade.models.base import DiffusionModel


def generate_video(request: VideoRequest, model: DiffusionModel | None = None,
                   cancel: threading.Event | None = None, previews: bool = True) -> Iterator[Event]:
    """Run a video request, yielding the cascade's events; Finished.frames holds every frame."""
    if not isinstance(request, VideoRequest):
        raise InvalidRequest("generate_video needs a VideoRequest (frames and fps)")
    yield from generate(request, model, cancel=cancel, previews=previews)


def make_video(request: VideoRequest, out: str | Path, model: DiffusionModel | None = None,
               cancel: threading.Event | None = None) -> tuple[Finished, Path]:
    """Run to the end and write the file (.mp4, .gif or .webp) with the parameters in its metadata."""
    path = check_video_path(out)
    for event in generate_video(request, model, cancel, previews=False):
        if isinstance(event, Finished):
            return event, write_video(event.frames, path, request.fps, event.metadata)
    raise RuntimeError("the cascade ended without a result")
