"""Self-Cascade Studio: the Gradio app. UI declarations and event wiring only; the work is in selfcascade/."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

from selfcascade.files.hosting import MAX_UPLOAD_MB  # noqa: E402
from selfcascade.files.outputs import OUTPUTS, start_janitor  # noqa: E402
from selfcascade.models.loader import load_model  # noqa: E402
from selfcascade.ui.generate_tab import build_generate_tab  # noqa: E402
from selfcascade.ui.handlers import end_session  # noqa: E402
from selfcascade.ui.train_tab import build_train_tab  # noqa: E402
from selfcascade.ui.video_tab import build_video_tab  # noqa: E402

transformers_logging.set_verbosity_error()  # its import-time notes (e.g. no torchvision) are not for users

DESCRIPTION = """# Self-Cascade Studio
Generate at several times a diffusion model's training size without repeated objects, with
[Self-Cascade](https://arxiv.org/abs/2402.10491): the image made at the base size becomes the *pivot*
of the next stage (bilinear up-sampling, re-noising to K, denoising with the same frozen model).
The embedded model was trained by this project at **64x64** on a world of coloured shapes and runs offline;
Stable Diffusion 1.x/2.x and SDXL load by hub id or local folder when their weights are available.
The Video tab runs the same cascade per frame on a text-to-video model (the embedded shapes-video, AnimateDiff,
ModelScope/zeroscope)."""


# gradio's own copies (results, previews, uploads) are deleted at the same age as our outputs folder.
CACHE_AGE = int(OUTPUTS.max_age)
# The Video tab's stage pivots are strips of frames (wide, short): gradio's gallery tiles are square, which left
# each strip floating in a tall empty tile, so that gallery's tiles take the image's own shape.
APP_CSS = """
#video-stages .thumbnail-item { aspect-ratio: auto; height: auto; }
#video-stages .thumbnail-item img { height: auto; }
"""
LAUNCH_OPTIONS = dict(max_file_size=f"{MAX_UPLOAD_MB}mb", allowed_paths=[str(OUTPUTS.root)], css=APP_CSS)


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="Self-Cascade Studio", delete_cache=(max(60, min(600, CACHE_AGE)), CACHE_AGE)) as demo:
        gr.Markdown(DESCRIPTION)
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                mode, adapter = build_generate_tab(demo)
            with gr.Tab("Video", id="video"):
                video_mode, video_adapter = build_video_tab(demo)
            with gr.Tab("Train adapter", id="train"):
                build_train_tab(mode, adapter, video_mode, video_adapter, tabs)
        demo.unload(end_session)  # a closed tab stops its run and frees its state
    return demo


demo = build_demo()
# Generation (and later training) share one device: one run at a time, the others wait in the queue.
demo.queue(default_concurrency_limit=1, max_size=int(os.environ.get("SELFCASCADE_QUEUE_SIZE", "16")))

if __name__ == "__main__":
    start_janitor()  # the outputs folder and gradio's cache stay under their age and size caps
    load_model(None)  # the embedded default, in a second, so that the first page shows its plan and estimate
    demo.launch(**LAUNCH_OPTIONS, server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
