"""The Train adapter tab: components and event wiring only (handlers in train_handlers.py)."""

from __future__ import annotations

import gradio as gr

from . import handlers
from .train_handlers import adapter_choices, train_stream


def build_train_tab(generate_mode: gr.Radio, generate_adapter: gr.Dropdown, tabs: gr.Tabs) -> None:
    gr.Markdown("Fine-tune only the tiny **time-aware feature upsamplers** (Algorithm 1 of the paper) on a few "
                "images at the stage size; the base model stays frozen. The adapter then drives the *tuned* mode.")
    with gr.Row():
        with gr.Column(scale=2):
            model = gr.Dropdown(handlers.MODEL_CHOICES, value="embedded", allow_custom_value=True,
                                label="Base model")
            uploads = gr.File(label="Training images", file_count="multiple", type="filepath",
                              file_types=["image"], elem_id="train-images")
            use_examples = gr.Checkbox(label="Use example images (renders of the shapes world)", value=False,
                                       elem_id="use-examples")
            with gr.Row():
                width = gr.Number(label="Stage width", value=128, precision=0)
                height = gr.Number(label="Stage height", value=128, precision=0)
            caption = gr.Textbox(label="Caption for images without a .txt", value="")
            with gr.Row():
                steps = gr.Slider(1, 2000, value=60, step=1, label="Steps", elem_id="train-steps")
                learning_rate = gr.Number(label="Learning rate", value=2e-3)
                batch = gr.Slider(1, 32, value=4, step=1, label="Batch")
            with gr.Row():
                train_button = gr.Button("Train", variant="primary", elem_id="train")
                stop_button = gr.Button("Stop", elem_id="train-stop")
        with gr.Column(scale=3):
            status = gr.Markdown("Ready.", elem_id="train-status")
            loss_plot = gr.LinePlot(x="step", y="loss", title="Training loss", height=240)
            sample = gr.Image(label="Sample (tuned, 2x the stage size)", type="pil", format="png")
            adapter_file = gr.File(label="Adapter (.safetensors)", elem_id="adapter-file")
            use_button = gr.Button("Use in Generate", elem_id="use-adapter")

    train_button.click(train_stream, inputs=[model, uploads, use_examples, width, height, steps, learning_rate,
                                             batch, caption], outputs=[status, loss_plot, sample, adapter_file],
                       concurrency_id="device", api_name="train")
    stop_button.click(handlers.stop, outputs=status, concurrency_limit=None, api_name="stop_training")

    def use_adapter(path):
        """Make the adapter just trained the Generate tab's, in tuned mode, and go there."""
        if not path:
            return gr.skip(), gr.skip(), gr.skip()
        return gr.update(choices=[path, *adapter_choices()], value=path), "tuned", gr.Tabs(selected="generate")

    use_button.click(use_adapter, inputs=adapter_file, outputs=[generate_adapter, generate_mode, tabs])
