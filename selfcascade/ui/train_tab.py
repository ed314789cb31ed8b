"""The Train adapter tab: components and event wiring only (handlers in train_handlers.py)."""

from __future__ import annotations

import gradio as gr

from selfcascade.adapters.designs import DEFAULT_DESIGN, DEFAULT_OBJECTIVE
from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import ON_SPACE
from selfcascade.ui import handlers, sessions, visitor_files
from selfcascade.ui.train_handlers import (
    NEW_ADAPTER,
    adapter_choices,
    add_resume_adapter,
    is_video_adapter,
    resume_choices,
    train_stream,
)
from selfcascade.ui.video_handlers import VIDEO_MODEL_CHOICES

# (label, value): what each training objective and upsampler design does, in a user's words
OBJECTIVE_CHOICES = [("restore what the small size lost (z_t from the up-sampled pivot)", "restore"),
                     ("keep the pivot (the paper's Algorithm 1: z_t from the image)", "keep")]
DESIGN_CHOICES = [("mixed: convolutions across channels (more capacity)", "mixed"),
                  ("shared: the same tiny filters on every channel (the paper's size)", "shared")]


def use_adapter(path: str | None, request: gr.Request | None = None):
    """Make the adapter file shown after training the one in use, in tuned mode, and go to the tab it is for.

    The file comes back from the browser (or from anyone calling /use_adapter), so it is checked like an upload
    (visitor_files.adopt_adapter: a readable adapter, bounded) and becomes this session's own; the lists get its
    token, never a path. A refusal is one line in a warning."""
    if not path:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    try:
        token = visitor_files.adopt_adapter(path, request)
    except InvalidRequest as error:
        gr.Warning(f"Adapter refused: {error}")
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    if is_video_adapter(visitor_files.resolve_adapter(token, request)):
        choice = gr.update(choices=adapter_choices(True, request), value=token)
        return gr.skip(), gr.skip(), choice, "tuned", gr.Tabs(selected="video")
    choice = gr.update(choices=adapter_choices(False, request), value=token)
    return choice, "tuned", gr.skip(), gr.skip(), gr.Tabs(selected="generate")


def build_train_tab(generate_mode: gr.Radio, generate_adapter: gr.Dropdown, video_mode: gr.Radio,
                    video_adapter: gr.Dropdown, tabs: gr.Tabs) -> None:
    gr.Markdown("Fine-tune only the tiny **time-aware feature upsamplers** (Algorithm 1 of the paper; by default "
                "they learn to restore, see below) on a few "
                "images at the stage size (for a video model: short videos or folders of frames); the base model "
                "stays frozen. The adapter then drives the *tuned* mode.")
    with gr.Row():
        with gr.Column(scale=2):
            model = gr.Dropdown(handlers.MODEL_CHOICES + VIDEO_MODEL_CHOICES, value="embedded",
                                allow_custom_value=True, label="Base model", elem_id="train-model")
            uploads = gr.File(label="Training images (any image format) or, for a video model, short videos "
                                    "(mp4, gif, webp); .txt captions of the same name; or a .zip of them",
                              file_count="multiple", type="filepath",
                              file_types=["image", "video", ".gif", ".webp", ".txt", ".zip"], height=140,
                              elem_id="train-images")
            # Reading the server's disk makes sense only on your own machine; the handler refuses it on a Space.
            folder = gr.Textbox(label="Or a folder of images on this machine", placeholder="/path/to/images",
                                visible=not ON_SPACE, elem_id="train-folder")
            use_examples = gr.Checkbox(label="Use example images or clips (renders of the shapes world)",
                                       value=False, elem_id="use-examples")
            with gr.Row():
                width = gr.Number(label="Stage width", value=128, step=1)
                height = gr.Number(label="Stage height", value=128, step=1)
            caption = gr.Textbox(label="Caption for images without a .txt", value="")
            with gr.Row():
                steps = gr.Slider(1, 2000, value=60, step=1, label="Steps", elem_id="train-steps")
                learning_rate = gr.Number(label="Learning rate", value=2e-3)
                batch = gr.Slider(1, 32, value=4, step=1, label="Batch (clips, for a video model)")
                frames = gr.Number(label="Frames per clip (video models)", value=8, step=1, minimum=1,
                                   elem_id="train-frames")
            with gr.Row():
                sample_every = gr.Number(label="Sample every N steps (0: at the end)", value=10, step=1,
                                         minimum=0, elem_id="sample-every", scale=2, min_width=100)
                sample_prompt = gr.Textbox(label="Sample prompt (empty: the first caption)", value="",
                                           elem_id="sample-prompt", scale=3, min_width=120)
                sample_seed = gr.Number(label="Sample seed", value=0, step=1, scale=1, min_width=80)
            with gr.Row():
                objective = gr.Dropdown(OBJECTIVE_CHOICES, value=DEFAULT_OBJECTIVE, label="Upsamplers learn to",
                                        elem_id="train-objective")
                design = gr.Dropdown(DESIGN_CHOICES, value=DEFAULT_DESIGN, label="Upsampler design",
                                     elem_id="train-design")
            with gr.Row(equal_height=True):
                resume = gr.Dropdown(resume_choices(), value=NEW_ADAPTER, label="Start from (resume)",
                                     elem_id="train-resume", scale=3)
                resume_file = gr.File(label="Or upload an adapter (.safetensors)", type="filepath",
                                      file_types=[".safetensors"], height=130, elem_id="resume-file", scale=2)
            with gr.Row():
                train_button = gr.Button("Train", variant="primary", elem_id="train")
                stop_button = gr.Button("Stop", elem_id="train-stop")
        with gr.Column(scale=3):
            status = gr.Markdown("Ready.", elem_id="train-status")
            loss_plot = gr.LinePlot(x="step", y="loss", title="Training loss", height=220)
            with gr.Row():
                reference = gr.Image(label="Tuning-free (same prompt and seed)", type="pil", format="png",
                                     height=300, elem_id="train-reference")
                sample = gr.Image(label="Tuned (the adapter so far)", type="pil", format="png", height=300,
                                  elem_id="train-sample")
            adapter_file = gr.File(label="Adapter (.safetensors)", elem_id="adapter-file")
            use_button = gr.Button("Use this adapter (Generate or Video tab)", elem_id="use-adapter")

    train_button.click(train_stream, inputs=[model, uploads, folder, use_examples, width, height, steps,
                                             learning_rate, batch, caption, sample_every, sample_prompt,
                                             sample_seed, resume, frames, objective, design],
                       outputs=[status, loss_plot, reference, sample, adapter_file, resume],
                       concurrency_id="device", api_name="train", validator=sessions.note_queued)
    stop_button.click(handlers.stop, outputs=status, queue=False, api_name="stop_training")
    resume_file.upload(add_resume_adapter, inputs=[resume_file, model], outputs=[resume, status],
                       api_visibility="private")
    use_button.click(use_adapter, inputs=adapter_file, api_visibility="private",
                     outputs=[generate_adapter, generate_mode, video_adapter, video_mode, tabs])
