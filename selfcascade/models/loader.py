"""Load a base model by hub id, local diffusers folder or single-file checkpoint (.safetensors, with `config`:
the diffusers layout of its family, selfcascade.models.single_file) into the right family; the embedded default
by default.

One model is held in memory at a time (a second load replaces the first): hub models are gigabytes. How it
is held is part of its identity: dtype (selfcascade.models.precision), an optional replacement VAE (e.g. the
fp16-fix one) and model CPU offload (selfcascade.models.placement).
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from diffusers import (
    AnimateDiffPipeline,
    AutoencoderKL,
    DiffusionPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    TextToVideoSDPipeline,
)

from selfcascade.errors import InvalidRequest
from selfcascade.models.availability import (
    SUPPORTED_TEXT,
    ModelUnavailable,
    check_folder,
    check_hub_model,
    explain,
)
from selfcascade.models.base import DiffusionModel
from selfcascade.models.folder_settings import BadFolderSettings, read_folder_settings
from selfcascade.models.memory import OutOfMemory, is_out_of_memory, out_of_memory_message, release_memory
from selfcascade.models.names import (  # noqa: F401 (is_embedded_video, EMBEDDED_*: part of the loader's API)
    ASSETS,
    EMBEDDED_MODEL,
    EMBEDDED_VIDEO_MODEL,
    is_embedded,
    is_embedded_video,
    is_hub_id,
    resolve,
)
from selfcascade.models.placement import OFFLOAD_CHOICES, place, use_sdpa
from selfcascade.models.precision import dtype_name, resolve_dtype, vae_dtype
from selfcascade.models.sdxl import StableDiffusionXLModel
from selfcascade.models.single_file import is_single_file, load_single_file
from selfcascade.models.stable_diffusion import StableDiffusionModel
from selfcascade.models.video import AnimateDiffModel, TextToVideoModel

_lock = threading.Lock()
_loaded: DiffusionModel | None = None

SUPPORTED_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline",  # model_index.json _class_name
                       "AnimateDiffPipeline", "TextToVideoSDPipeline")


def current_model(model_id: str | None) -> DiffusionModel | None:
    """The model in memory if it is `model_id` (in whatever dtype it was loaded), without loading anything."""
    loaded = _loaded
    return loaded if loaded is not None and loaded.name == resolve(model_id) else None


def _wrap(pipeline: DiffusionPipeline, name: str, settings: tuple) -> DiffusionModel:
    if isinstance(pipeline, AnimateDiffPipeline):
        return AnimateDiffModel(pipeline, name, settings)
    if isinstance(pipeline, TextToVideoSDPipeline):
        return TextToVideoModel(pipeline, name, settings)
    if isinstance(pipeline, StableDiffusionXLPipeline):
        return StableDiffusionXLModel(pipeline, name, settings)
    if isinstance(pipeline, StableDiffusionPipeline):
        return StableDiffusionModel(pipeline, name, settings)
    raise ModelUnavailable(f"{name}: a {type(pipeline).__name__} is not supported yet "
                           f"(supported: {SUPPORTED_TEXT})")


IMAGE_PIPELINES = (StableDiffusionPipeline, StableDiffusionXLPipeline)


def wrap_pipeline(pipeline, name: str | None = None) -> DiffusionModel:
    """A caller's own Stable Diffusion 1.x/2.x or SDXL pipeline as a model for the cascade, sharing every
    component (nothing is copied or reloaded): whatever the caller did to it before (LoRAs, a single-file
    checkpoint, another VAE or scheduler, a dtype, model CPU offload) holds. `name` is what records show
    (default: the pipeline's own `name_or_path`). Raises InvalidRequest for any other object."""
    if not isinstance(pipeline, IMAGE_PIPELINES):
        kind = type(pipeline).__name__
        raise InvalidRequest(f"from_pipe takes a StableDiffusionPipeline or StableDiffusionXLPipeline, not a {kind}")
    name = name or getattr(pipeline, "name_or_path", None) or "custom-pipeline"
    model = _wrap(pipeline, str(name), ("caller's", None, "caller's", None))
    # Offloaded by the caller (enable_model_cpu_offload): accelerate's hooks move each part to the GPU itself.
    model.offloaded = hasattr(pipeline.unet, "_hf_hook")
    _apply_folder_settings(model, {})
    return model


def _apply_folder_settings(model: DiffusionModel, settings: dict) -> None:
    """Settings measured on this very model (the embedded ones' 0.7 px band, 4 consensus estimates) travel
    with its folder (folder_settings)."""
    model.default_anchor_sigma = settings.get("pivot_anchor_sigma")
    model.default_consensus = settings.get("pivot_consensus", 0)


def load_vae(source: str, run_dtype: torch.dtype, subfolder: str | None = None) -> AutoencoderKL:
    """A VAE (a VAE folder or hub id, or a pipeline's `vae` subfolder) in the dtype its config asks for:
    float32 when it sets `force_upcast` and the run is float16, else the run's dtype."""
    location = source if is_hub_id(source) else str(Path(source).expanduser())
    if not is_hub_id(source) and not Path(location).is_dir():
        raise ModelUnavailable(f"VAE {source}: no such folder")
    if subfolder is None and not is_hub_id(source) and (Path(location) / "vae" / "config.json").is_file():
        subfolder = "vae"  # a whole pipeline folder given as --vae: take its VAE
    try:
        try:
            config = AutoencoderKL.load_config(location, subfolder=subfolder)
        except OSError:
            if subfolder is not None or not is_hub_id(source):
                raise
            subfolder = "vae"  # a pipeline's hub id given as --vae: take its VAE
            config = AutoencoderKL.load_config(location, subfolder=subfolder)
        dtype = vae_dtype(config.get("force_upcast", True), run_dtype)
        return AutoencoderKL.from_pretrained(location, subfolder=subfolder, dtype=dtype, use_safetensors=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise explain(error, f"VAE {source}") from None


def load_pipeline(name: str, dtype: torch.dtype, vae: str | None = None,
                  config: str | None = None) -> DiffusionPipeline:
    """diffusers' own loading after a cheap check of model_index.json; every failure is one ModelUnavailable.
    The VAE is `vae` when given, else the folder's own, loaded in float32 when its config sets force_upcast
    and the run is float16 (see load_vae). A single-file checkpoint (`name` ending in .safetensors) loads with
    the configs of `config` (a diffusers folder or hub id of its family; default: the family's hub repo)."""
    if is_single_file(name):
        return load_single_file(name, dtype, (lambda: load_vae(vae, dtype)) if vae else None, config)
    if config:
        raise InvalidRequest(f"config {config}: only a single-file checkpoint (.safetensors) takes a configuration; "
                             f"{name} is a diffusers folder or hub id, which has its own")
    local = Path(name).expanduser()
    from_hub = is_hub_id(name)
    if from_hub:
        index = check_hub_model(name, SUPPORTED_PIPELINES)
    else:
        index = check_folder(local, name, SUPPORTED_PIPELINES)
    source = name if from_hub else str(local)
    extra = {}
    if vae:
        extra["vae"] = load_vae(vae, dtype)
    elif dtype == torch.float16:
        extra["vae"] = load_vae(source, dtype, subfolder="vae")
    # Only Stable Diffusion pipelines have a safety checker; other families would warn about the argument.
    if index["_class_name"] == "StableDiffusionPipeline":
        extra.update(safety_checker=None, requires_safety_checker=False)
    try:
        return DiffusionPipeline.from_pretrained(source, dtype=dtype, use_safetensors=True, **extra)
    except (OSError, ValueError, KeyError, AttributeError, TypeError, ImportError) as error:
        raise explain(error, name) from None


def load_model(model_id: str | None = None, dtype: str | torch.dtype | None = None, vae: str | None = None,
               offload: str = "auto", config: str | None = None) -> DiffusionModel:
    """The model for `model_id` (None: the embedded default), reusing the one in memory if it matches.

    dtype: 'auto' / None (float16 on a GPU, float32 on the CPU), 'float32', 'float16', 'bfloat16' or a torch
    dtype. vae: a VAE to use instead of the model's own. offload: model CPU offload, 'auto' (when a GPU
    lacks room for the weights), 'on' or 'off'. config: for a single-file checkpoint (a .safetensors
    `model_id`), the diffusers folder or hub id of its family whose configs it takes (default: the family's hub
    repository, which needs the network unless it is in the local cache).
    """
    global _loaded
    name = resolve(model_id)
    dtype = dtype if isinstance(dtype, torch.dtype) else resolve_dtype(dtype)
    if offload not in OFFLOAD_CHOICES:
        raise InvalidRequest(f"unknown offload {offload!r}; choose one of {', '.join(OFFLOAD_CHOICES)}")
    settings = (dtype_name(dtype), (vae or "").strip() or None, offload, (config or "").strip() or None)
    try:  # a hub model or a single file carries none; reading <owner>/<name>/ here would read a relative folder
        folder_settings = {} if is_hub_id(name) or is_single_file(name) else read_folder_settings(name)
    except BadFolderSettings as error:
        raise InvalidRequest(str(error)) from None
    with _lock:
        if _loaded is not None and _loaded.name == name and _loaded.settings == settings:
            _apply_folder_settings(_loaded, folder_settings)  # the file may have changed
            return _loaded
        _loaded = None  # release the previous model before loading the next
        release_memory()
        try:
            pipeline = load_pipeline(name, dtype, settings[1], settings[3])
            use_sdpa(pipeline)
            offloaded = place(pipeline, offload)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            pipeline = None
        if pipeline is None:  # outside the except block: its traceback no longer holds the tensors
            release_memory()
            raise OutOfMemory(out_of_memory_message(f"loading {name}"))
        _loaded = _wrap(pipeline, name, settings)
        _loaded.offloaded = offloaded
        _apply_folder_settings(_loaded, folder_settings)
        return _loaded
