"""The Generate tab: components and event wiring only (the handlers live in handlers.py)."""

from __future__ import annotations

import gradio as gr

from selfcascade.cascade.request import MODES, PIVOT_UPSAMPLINGS
from selfcascade.diffusion.anchor import DEFAULT_ANCHOR
from selfcascade.diffusion.consensus import MAX_CONSENSUS
from selfcascade.diffusion.sampling import SCHEDULERS
from selfcascade.diffusion.upper_stage import DEFAULT_STRATEGY, STRATEGIES
from selfcascade.models.placement import OFFLOAD_CHOICES
from selfcascade.models.precision import DTYPE_CHOICES, FP16_FIX_VAE
from selfcascade.models.vae import TILING_CHOICES
from selfcascade.ui import handlers, sessions
from selfcascade.ui.space_policy import on_space
from selfcascade.ui.train_handlers import adapter_choices, add_uploaded_adapter

PROMPT_HINT = "a [small|large] <colour> <shape> [on a <background> background]"
UPPER_HINT = ("hidiffusion-pyramid: frequency-pyramid whose full view runs the UNet's deep blocks at native size "
              "(HiDiffusion's RAU-Net; rounder outlines, best measured on the embedded model); frequency-pyramid: "
              "each octave of the noise from the native-size view that resolves it; hidiffusion: RAU-Net alone; "
              "frequency-split: two bands; plain: the paper's full-size call; "
              "demofusion: DemoFusion's dilated sampling; scalecrafter: ScaleCrafter's re-dilated convolutions; "
              "fouriscale: FouriScale. Earlier names (rau-pyramid, rau, dilated, redilated) are still accepted")
UPPER_GUIDANCE_HINT = ("classifier-free guidance of the stages that refine a pivot; the pivot already follows the "
                       "prompt, so less is enough: 1 is one UNet pass instead of two (half the cost), and on the "
                       "embedded model as good as 2 and better than 4")
ANCHOR_HINT = ("1: the pivot's low frequencies (layout, flat backgrounds) are kept and the model adds detail "
               "(far fewer background blotches at 8x; best measured for hub models and embedded video); 0.5: "
               "crisper edges, the embedded image model's; 0: the paper's sampling, free to redraw them")
CONSENSUS_HINT = ("clean estimates of the first stage's sample averaged into the pivot the upper stages enlarge, "
                  "so an outline error of one estimate does not grow 4x with them (embedded model: 4, rounder "
                  "circles at 256 px for 1-2% more time; no gain measured at 512 px); 0: off, the paper's")
LORA_HINT = ("a folder or .safetensors file on this machine, or a hub id (owner/name); :SCALE from -4 to 4, "
             "default 1; up to 8, applied at every stage")
SPACE_LORA_HINT = "hub ids (owner/name) of LoRAs for the base model; :SCALE from -4 to 4, default 1; up to 8"
PIVOT_UP_HINT = ("latent: bilinear on the latents (the paper's); pixel: decode, Lanczos, encode, so the next stage "
                 "starts from latents the model knows (on the embedded model: no off-colour blemishes, sharper)")


def build_generate_tab(demo: gr.Blocks) -> tuple[gr.Radio, gr.Dropdown]:
    """Declare the tab; returns (mode, adapter) so the Train tab can switch them to a new adapter."""
    names = handlers.preset_names()
    first = dict(zip(handlers.FORM, handlers.preset_values(names[0])))
    with gr.Row():
        with gr.Column(scale=2):
            preset = gr.Dropdown(names, value=names[0], label="Preset",
                                 info=handlers.unavailable_presets_note() or None)
            model = gr.Dropdown(handlers.MODEL_CHOICES, value=first["model"], allow_custom_value=True,
                                label="Base model (embedded, a hub id or a local diffusers folder)")
            prompt = gr.Textbox(label="Prompt", value=first["prompt"], placeholder=PROMPT_HINT, elem_id="prompt",
                                info="An empty prompt is allowed: the model then draws whatever it likes.")
            negative = gr.Textbox(label="Negative prompt", value="")
            with gr.Row():
                width = gr.Number(label="Width", value=first["width"], step=1)
                height = gr.Number(label="Height", value=first["height"], step=1)
            stages = gr.Textbox(label="Stages (empty: automatic, 2x per side; or e.g. 64,128,256)", value="")
            mode = gr.Radio(list(MODES), value="tuning-free", label="Mode", elem_id="mode")
            num_images = gr.Slider(1, handlers.MAX_IMAGES, value=1, step=1, label="Number of images",
                                   info="made one after another with seeds seed, seed + 1, ...",
                                   elem_id="num-images")
            with gr.Accordion("Sampling", open=False):
                steps = gr.Slider(1, 200, value=first["steps"], step=1, label="Steps")
                strength = gr.Slider(0.05, 1.0, value=first["strength"], step=0.05,
                                     label="Strength: re-noise level K/T of every stage after the first")
                guidance = gr.Slider(0, 15, value=first["guidance"], step=0.5, label="Guidance")
                upper_guidance = gr.Slider(0, 15, value=first["upper_guidance"], step=0.5, elem_id="upper-guidance",
                                           label="Upper-stage guidance (the stages after the first)",
                                           info=UPPER_GUIDANCE_HINT)
                scheduler = gr.Dropdown(list(SCHEDULERS), value=first["scheduler"], label="Scheduler")
                # Custom values reach the request, which turns an earlier name (a script's "rau-pyramid") into
                # the current one and refuses unknown names with its own message.
                upper = gr.Dropdown(list(STRATEGIES), value=first["upper"] or DEFAULT_STRATEGY, elem_id="upper",
                                    label="Upper-stage denoising (stages above the training size)",
                                    info=UPPER_HINT, allow_custom_value=True)
                anchor = gr.Slider(0, 1, value=DEFAULT_ANCHOR if first["anchor"] == "" else first["anchor"],
                                   step=0.05, elem_id="anchor",
                                   label="Pivot anchoring: how much each upper stage keeps its pivot's layout",
                                   info=ANCHOR_HINT)
                pivot_up = gr.Radio(list(PIVOT_UPSAMPLINGS), value=first["pivot_up"], elem_id="pivot-up",
                                    label="Pivot up-sampling (between stages)", info=PIVOT_UP_HINT)
                consensus = gr.Slider(0, MAX_CONSENSUS, value=first["consensus"] or 0, step=1, elem_id="consensus",
                                      label="Pivot consensus (images: first-stage estimates averaged)",
                                      info=CONSENSUS_HINT)
                with gr.Row():
                    seed = gr.Number(label="Seed", value=0, step=1)
                    randomise = gr.Button("🎲 Random seed", size="sm")
            with gr.Accordion("Adapter for the tuned mode", open=False):
                choices = adapter_choices()
                adapter = gr.Dropdown(choices, value=choices[0][1] if choices else None, allow_custom_value=True,
                                      label="Adapter (trained upsamplers)", elem_id="adapter")
                adapter_file = gr.File(label="Load an adapter file (.safetensors)", type="filepath",
                                       file_types=[".safetensors"])
                adapter_status = gr.Markdown()
            with gr.Accordion("LoRAs", open=False):
                loras = gr.Textbox(label="LoRAs (PATH_OR_ID[:SCALE], one a line or comma-separated; empty: none)",
                                   lines=2, placeholder="owner/name:0.8", elem_id="loras",
                                   info=SPACE_LORA_HINT if on_space() else LORA_HINT)
            with gr.Accordion("Precision and memory", open=False):
                dtype = gr.Dropdown(list(DTYPE_CHOICES), value="auto", label="Precision", elem_id="dtype",
                                    info="auto: float16 on a GPU, float32 on the CPU; a VAE that asks for it "
                                         "(force_upcast, e.g. SDXL's) decodes in float32")
                vae = gr.Textbox(label="VAE instead of the model's own (hub id or folder; empty: the model's)",
                                 placeholder=FP16_FIX_VAE, elem_id="vae")
                with gr.Row():
                    vae_tiling = gr.Radio(list(TILING_CHOICES), value="auto", elem_id="vae-tiling",
                                          label="VAE tiling (auto: above 1024x1024)")
                    offload = gr.Radio(list(OFFLOAD_CHOICES), value="auto", elem_id="offload",
                                       label="Model CPU offload (GPU only; auto: when memory is short)")
            with gr.Accordion("Upscale my image", open=False):
                upload = gr.File(label="Image to continue from (becomes the stage-0 pivot)", type="filepath",
                                 file_types=["image"])
            with gr.Accordion("Reuse the settings of a PNG (made here or by A1111)", open=False):
                settings_png = gr.File(label="PNG with Self-Cascade settings", type="filepath", file_types=[".png"])
            plan = gr.Markdown(elem_id="plan")
            with gr.Row():
                run_button = gr.Button("Generate", variant="primary", elem_id="generate")
                stop_button = gr.Button("Stop", elem_id="stop")
        with gr.Column(scale=3):
            status = gr.Markdown("Ready.", elem_id="status")
            with gr.Row():
                live = gr.Image(label="Live preview", type="pil", format="png", height=256, elem_id="live")
                result = gr.Image(label="Result", type="pil", format="png", buttons=["download", "fullscreen"],
                                  elem_id="result")
            images = gr.Gallery(label="Images of this run (seed under each; open one to download its PNG, "
                                      "or download all)", columns=4, height="auto", elem_id="images",
                                object_fit="contain", visible=False,
                                buttons=["download", "download_all", "fullscreen"])
            gallery = gr.Gallery(label="Stage pivots", columns=4, height=240, format="png", elem_id="stages",
                                 object_fit="contain")
            download = gr.File(label="PNG with its parameters")
            with gr.Accordion("Compare with a baseline (same seed)", open=False):
                with gr.Row():
                    baseline = gr.Radio(["direct", "hires-fix"], value="direct", label="Baseline")
                    compare_button = gr.Button("Compare", elem_id="compare")
                compare_status = gr.Markdown()
                slider = gr.ImageSlider(label="Baseline (left) vs Self-Cascade (right)", type="pil", format="png")

    form = [model, prompt, negative, width, height, stages, mode, steps, strength, guidance, scheduler, upper, anchor,
            upper_guidance]
    sizing = [model, width, height, stages, mode, steps, strength, guidance, scheduler, upper, anchor, adapter,
              vae_tiling, upper_guidance, num_images]
    precision = [dtype, vae, vae_tiling, offload]
    presettable = [*form, pivot_up, consensus]  # handlers.FORM order; these two go to the handlers by keyword
    preset.change(handlers.preset_values, inputs=preset, outputs=presettable, api_visibility="private")
    # Picking direct shows (and runs) plain, the paper's baseline; leaving it restores the replaced strategy.
    replaced = gr.State(None)
    mode.input(handlers.upper_for_mode, inputs=[mode, upper, replaced], outputs=[upper, replaced],
               api_visibility="private", queue=False)
    # One plan endpoint for every trigger (a field's change, also when a preset fills it; the page load):
    # cheap by contract, so it runs outside the queue.
    gr.on([component.change for component in sizing] + [demo.load], handlers.describe_plan, inputs=sizing,
          outputs=plan, show_progress="hidden", queue=False, api_name="describe_plan")
    num_images.change(handlers.batch_visibility, inputs=num_images, outputs=images, api_visibility="private",
                      queue=False)
    randomise.click(handlers.new_seed, outputs=seed, api_visibility="private")
    settings_png.upload(handlers.reuse_settings, inputs=settings_png,
                        outputs=[*presettable, seed, adapter, loras, status], api_name="reuse_settings")
    adapter_file.upload(add_uploaded_adapter, inputs=[adapter_file, model], outputs=[adapter, adapter_status],
                        api_visibility="private")
    # note_queued runs when gradio accepts the job into its queue: Stop can then reach it while it waits.
    run_button.click(handlers.generate_stream, inputs=[*form, seed, upload, adapter, *precision, pivot_up,
                                                               consensus, loras, num_images],
                     outputs=[status, live, gallery, result, download, images], concurrency_id="device",
                     api_name="generate", validator=sessions.note_queued)
    compare_button.click(handlers.compare, inputs=[*form, seed, baseline, adapter, *precision, pivot_up,
                                                           consensus, loras],
                         outputs=[compare_status, slider],
                         concurrency_id="device", api_name="compare", validator=sessions.note_queued)
    # Cooperative stop: the running loop checks a per-session flag before every denoising step.
    stop_button.click(handlers.stop, outputs=status, api_name="stop", concurrency_limit=None, queue=False)
    return mode, adapter
