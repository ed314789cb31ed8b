"""Thin event handlers of the Video tab: UI values -> VideoRequest -> cascade events -> UI outputs.

Like the Generate tab's: plain values in and out (testable without a browser), one per-session cancel flag
(sessions.py) checked at every denoising step, InvalidRequest shown as one line.
"""

from __future__ import annotations

import time

import gradio as gr

from selfcascade.cascade import status
from selfcascade.cascade.fields import request_from_fields
from selfcascade.cascade.pipeline import Finished, StageDone, StageStarted, StepDone
from selfcascade.cascade.request import DEFAULT_FREE_INIT, VideoRequest
from selfcascade.cascade.video import generate_video
from selfcascade.diffusion.motion_steering import DEFAULT_STEERED_FRACTION, DEFAULT_TRAVEL
from selfcascade.errors import Cancelled, InvalidRequest
from selfcascade.files.outputs import OUTPUTS
from selfcascade.files.video import write_video
from selfcascade.models.loader import load_model
from selfcascade.models.preview import quick_preview
from selfcascade.models.video import VideoModel
from selfcascade.ui import sessions, visitor_files
from selfcascade.ui.gpu_time import video_seconds
from selfcascade.ui.handlers import LIVE_PREVIEW_INTERVAL, model_field, on_gpu

VIDEO_MODEL_CHOICES = [
    ("Embedded shapes-video (64 px, AnimateDiff-style, offline)", "shapes-video"),
    ("ModelScope text-to-video 1.7B (256 px)", "ali-vilab/text-to-video-ms-1.7b"),
    ("Zeroscope v2 576w (576x320)", "cerspense/zeroscope_v2_576w"),
]
DOWNLOAD_FORMATS = ("mp4", "gif", "webp")
VIDEO_FORM = ("model", "prompt", "negative_prompt", "width", "height", "frames", "fps", "stages", "mode", "steps",
              "strength", "guidance", "scheduler", "upper", "anchor", "upper_guidance", "pivot_up",
              "free_init", "motion", "travel", "steer")


def build_video_request(model, prompt, negative, width, height, frames, fps, stages, mode, steps, strength,
                        guidance, scheduler, upper, anchor, upper_guidance, seed, adapter=None,
                        pivot_up=None, free_init=DEFAULT_FREE_INIT, motion="auto", travel=DEFAULT_TRAVEL,
                        steer=DEFAULT_STEERED_FRACTION) -> VideoRequest:
    """UI values -> a checked VideoRequest (InvalidRequest with the reason otherwise)."""
    return request_from_fields(
        VideoRequest, model=_video_model_field(model), prompt=prompt, negative_prompt=negative, width=width,
        height=height, frames=frames, fps=fps, stages=stages, mode=mode, steps=steps, strength=strength,
        guidance=guidance, scheduler=scheduler, upper=upper, anchor=anchor, upper_guidance=upper_guidance,
        seed=seed, adapter=adapter, pivot_up=pivot_up, free_init=free_init, motion=motion, travel=travel,
        steer=steer)


def _video_model_field(model) -> str | None:
    """None for the embedded video model (also "embedded" and empty), else the id or folder as typed."""
    text = model_field(model)
    return None if text is None or text == "shapes-video" else text


def _strip(loaded, latents, most: int = 8):
    """A live strip of up to `most` frames being denoised (quick_preview: a cheap linear map for big VAEs)."""
    step = max(1, -(-latents.shape[0] // most))
    return VideoModel.strip([quick_preview(loaded, latents[i:i + 1]) for i in range(0, latents.shape[0], step)])


@on_gpu(seconds=video_seconds)  # ZeroGPU time from the clip's size, frames, stages and steps
def video_stream(model, prompt, negative, width, height, frames, fps, stages, mode, steps, strength, guidance,
                 scheduler, upper, anchor, upper_guidance, seed, adapter=None, download_format="mp4",
                 pivot_up=None, free_init=DEFAULT_FREE_INIT, motion="auto", travel=DEFAULT_TRAVEL,
                 steer=DEFAULT_STEERED_FRACTION, request: gr.Request | None = None):
    """Yield (status, live strip, stage gallery, mp4 for the player, file to download) as the cascade runs."""
    cancel = sessions.begin(request)
    gallery: list[tuple] = []
    try:
        sessions.raise_if_stopped(cancel)
        adapter = visitor_files.checked_sources(request, model, None, adapter, mode == "tuned")  # no server paths
        video = build_video_request(model, prompt, negative, width, height, frames, fps, stages, mode, steps,
                                    strength, guidance, scheduler, upper, anchor, upper_guidance, seed, adapter,
                                    pivot_up, free_init, motion, travel, steer)
        yield "Loading the model...", None, [], None, None
        loaded = load_model(video.model or video.default_model)
        last_preview, stage = 0.0, None
        for event in generate_video(video, loaded, cancel=cancel):
            if isinstance(event, StageStarted):
                stage = event
                yield status.stage_started(event, video.frames), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            elif isinstance(event, StepDone) and time.monotonic() - last_preview > LIVE_PREVIEW_INTERVAL:
                last_preview = time.monotonic()
                yield status.step_done(stage, event), _strip(loaded, event.latents), gr.skip(), gr.skip(), gr.skip()
            elif isinstance(event, StageDone):
                gallery.append((event.preview, status.stage_done(event)))
                yield gr.skip(), event.preview, list(gallery), gr.skip(), gr.skip()
            elif isinstance(event, Finished):
                player = write_video(event.frames, OUTPUTS.new_path("videos", "selfcascade", ".mp4"), video.fps,
                                     event.metadata)
                download = player
                if download_format in ("gif", "webp"):
                    download = write_video(event.frames, OUTPUTS.new_path("videos", "selfcascade",
                                                                          f".{download_format}"),
                                           video.fps, event.metadata)
                chain = " -> ".join(event.metadata["stage_sizes"])
                steered = event.metadata.get("motion_direction", "-")
                motion = f"; steered {steered}" if steered != "-" else ""
                yield (f"**Done** ({event.metadata['mode']}; {len(event.frames)} frames at {video.fps:g} fps"
                       f"{motion}) in "
                       f"{event.seconds:.1f} s: {chain}", gr.skip(), list(gallery), str(player), str(download))
    except InvalidRequest as error:
        gr.Warning(str(error))
        yield f"**Not run:** {error}", gr.skip(), gr.skip(), gr.skip(), gr.skip()
    except Cancelled:
        yield "**Stopped.** The app is ready for the next run.", gr.skip(), list(gallery), gr.skip(), gr.skip()
    finally:
        sessions.finish(request, cancel)
