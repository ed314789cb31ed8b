"""Self-Cascade Studio: the Gradio app. UI declarations and event wiring only; the work is in selfcascade/."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

from selfcascade.ui.generate_tab import build_generate_tab  # noqa: E402
from selfcascade.ui.train_tab import build_train_tab  # noqa: E402

transformers_logging.set_verbosity_error()  # its import-time notes (e.g. no torchvision) are not for users

DESCRIPTION = """# Self-Cascade Studio
Generate at several times a diffusion model's training size without repeated objects, with
[Self-Cascade](https://arxiv.org/abs/2402.10491): the image made at the base size becomes the *pivot*
of the next stage (bilinear up-sampling, re-noising to K, denoising with the same frozen model).
The embedded model was trained by this project at **64x64** on a world of coloured shapes and runs offline;
Stable Diffusion 1.x/2.x and SDXL load by hub id or local folder when their weights are available."""


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="Self-Cascade Studio") as demo:
        gr.Markdown(DESCRIPTION)
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                mode, adapter = build_generate_tab(demo)
            with gr.Tab("Train adapter", id="train"):
                build_train_tab(mode, adapter, tabs)
    return demo


demo = build_demo()
# Generation (and later training) share one device: one run at a time, the others wait in the queue.
demo.queue(default_concurrency_limit=1, max_size=int(os.environ.get("SELFCASCADE_QUEUE_SIZE", "16")))

if __name__ == "__main__":
    demo.launch(max_file_size="20mb", server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
