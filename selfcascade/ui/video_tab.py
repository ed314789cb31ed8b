"""The Video tab: components and event wiring only (the handlers live in video_handlers.py)."""

from __future__ import annotations

import gradio as gr

from selfcascade.cascade.presets import request_defaults, upper_guidance_of
from selfcascade.cascade.request import DEFAULT_FREE_INIT, MAX_FPS, MAX_FRAMES, MODES, PIVOT_UPSAMPLINGS
from selfcascade.diffusion.anchor import DEFAULT_ANCHOR
from selfcascade.diffusion.motion_steering import DEFAULT_STEERED_FRACTION, DEFAULT_TRAVEL, MOTION_CHOICES
from selfcascade.diffusion.sampling import SCHEDULERS
from selfcascade.diffusion.upper_stage import DEFAULT_STRATEGY, STRATEGIES
from selfcascade.ui import handlers, sessions, video_handlers
from selfcascade.ui.generate_tab import ANCHOR_HINT, PIVOT_UP_HINT, UPPER_GUIDANCE_HINT, UPPER_HINT
from selfcascade.ui.train_handlers import adapter_choices

FREE_INIT_HINT = ("each pass samples the first stage again from the last one's diffused low frequencies: one "
                  "background and layout for all frames, at the cost of one more first stage")
MOTION_HINT = ("steers the first stage's noisiest steps so the layout travels this way (auto: the prompt's "
               "'moving right/left/up/down'); on a scene it reads as the camera panning the other way")
PROMPT_HINT = "a [small|large] <colour> <shape> [on a <background> background] [moving right|left|up|down]"


def build_video_tab(demo: gr.Blocks) -> tuple[gr.Radio, gr.Dropdown]:
    """Declare the tab. Returns the mode choice and the tuned mode's adapter list (the Train tab's *Use*
    selects a video adapter there and switches to tuned)."""
    defaults = request_defaults("shapes-video")  # the image model's preset, with the video model's anchoring
    with gr.Row():
        with gr.Column(scale=2):
            model = gr.Dropdown(video_handlers.VIDEO_MODEL_CHOICES, value="shapes-video", allow_custom_value=True,
                                label="Video model (embedded, a hub id or a local diffusers folder)")
            prompt = gr.Textbox(label="Prompt", value="a red circle moving right", placeholder=PROMPT_HINT,
                                elem_id="video-prompt")
            negative = gr.Textbox(label="Negative prompt", value="")
            with gr.Row():
                width = gr.Number(label="Width", value=128, step=1, elem_id="video-width")
                height = gr.Number(label="Height", value=128, step=1, elem_id="video-height")
            with gr.Row():
                # 16: the embedded model's training clips (and the CLI's default). At 8 frames its objects travel
                # about half as far (0.16 of the side against 0.36, seeds 1-3 at 128 px) and the default prompt
                # at seed 0 hardly moved (2 px), which read as "moving right" not working.
                frames = gr.Number(label=f"Frames (1-{MAX_FRAMES})", value=16, step=1, elem_id="video-frames")
                fps = gr.Number(label=f"Frames per second (up to {MAX_FPS})", value=8, elem_id="video-fps")
            stages = gr.Textbox(label="Stages (empty: automatic, 2x per side; or e.g. 64,128,256)", value="")
            mode = gr.Radio(list(MODES), value="tuning-free", label="Mode", elem_id="video-mode")
            motion = gr.Radio(list(MOTION_CHOICES), value="auto", label="Motion direction", info=MOTION_HINT,
                              elem_id="video-motion")
            with gr.Accordion("Sampling", open=False):
                steps = gr.Slider(1, 200, value=defaults.get("steps", 40), step=1, label="Steps",
                                  elem_id="video-steps")
                strength = gr.Slider(0.05, 1.0, value=defaults.get("strength", 0.5), step=0.05,
                                     label="Strength: re-noise level K/T of every stage after the first")
                guidance = gr.Slider(0, 15, value=defaults.get("guidance", 4.0), step=0.5, label="Guidance")
                upper_guidance = gr.Slider(0, 15, step=0.5, info=UPPER_GUIDANCE_HINT,
                                           value=upper_guidance_of({"guidance": 4.0, **defaults}),
                                           label="Upper-stage guidance (the stages after the first)")
                scheduler = gr.Dropdown(list(SCHEDULERS), value=defaults.get("scheduler") or "ddpm",
                                        label="Scheduler")
                upper = gr.Dropdown(list(STRATEGIES), value=defaults.get("upper") or DEFAULT_STRATEGY,
                                    info=UPPER_HINT, allow_custom_value=True,  # earlier names: as on Generate
                                    label="Upper-stage denoising (per frame, stages above the training size)")
                anchor = gr.Slider(0, 1, value=defaults.get("anchor", DEFAULT_ANCHOR), step=0.05, info=ANCHOR_HINT,
                                   label="Pivot anchoring: how much each upper stage keeps its pivot's layout")
                pivot_up = gr.Radio(list(PIVOT_UPSAMPLINGS), value=defaults.get("pivot_up") or "latent",
                                    elem_id="video-pivot-up", label="Pivot up-sampling (between stages, per frame)",
                                    info=PIVOT_UP_HINT)
                free_init = gr.Slider(0, 4, value=DEFAULT_FREE_INIT, step=1, info=FREE_INIT_HINT,
                                      elem_id="video-free-init", label="FreeInit passes (first stage)")
                travel = gr.Slider(0, 1, value=DEFAULT_TRAVEL, step=0.02, elem_id="video-travel",
                                   label="Motion travel: how far the steered layout moves over the clip (of the side)")
                steer = gr.Slider(0, 1, value=DEFAULT_STEERED_FRACTION, step=0.05, elem_id="video-steer",
                                  label="Steered share of the first stage's steps (0: no steering)")
                with gr.Row():
                    seed = gr.Number(label="Seed", value=0, step=1, elem_id="video-seed")
                    randomise = gr.Button("🎲 Random seed", size="sm")
            with gr.Accordion("Adapter for the tuned mode", open=False):
                choices = adapter_choices(video=True)
                adapter = gr.Dropdown(choices, value=choices[0][1] if choices else None, allow_custom_value=True,
                                      label="Adapter (upsamplers trained on clips for this video model)",
                                      elem_id="video-adapter")
            download_format = gr.Radio(list(video_handlers.DOWNLOAD_FORMATS), value="mp4",
                                       label="Download as (the player always gets the mp4)")
            with gr.Row():
                run_button = gr.Button("Make video", variant="primary", elem_id="video-run")
                stop_button = gr.Button("Stop", elem_id="video-stop")
        with gr.Column(scale=3):
            status = gr.Markdown("Ready.", elem_id="video-status")
            live = gr.Image(label="Live frames", type="pil", format="png", height=160, elem_id="video-live")
            gallery = gr.Gallery(label="Stage pivots (a strip of frames per stage)", columns=1, height="auto",
                                 format="png", elem_id="video-stages", object_fit="contain")
            player = gr.Video(label="Result", format="mp4", elem_id="video-result", autoplay=True, loop=True,
                              buttons=["download"])
            download = gr.File(label="File with its parameters", elem_id="video-download")

    inputs = [model, prompt, negative, width, height, frames, fps, stages, mode, steps, strength, guidance,
              scheduler, upper, anchor, upper_guidance, seed, adapter, download_format, pivot_up, free_init,
              motion, travel, steer]
    randomise.click(handlers.new_seed, outputs=seed, api_visibility="private")
    replaced = gr.State(None)  # as on the Generate tab: direct shows (and runs) plain, the paper's baseline
    mode.input(handlers.upper_for_mode, inputs=[mode, upper, replaced], outputs=[upper, replaced],
               api_visibility="private", queue=False)
    run_button.click(video_handlers.video_stream, inputs=inputs, outputs=[status, live, gallery, player, download],
                     concurrency_id="device", api_name="video", validator=sessions.note_queued)
    stop_button.click(handlers.stop, outputs=status, api_name="stop_video", queue=False)
    return mode, adapter
