"""Load a base model by hub id or local path into the right family; the embedded default by default.

One model is held in memory at a time (a second load replaces the first): hub models are gigabytes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch
from diffusers import (
    AnimateDiffPipeline,
    DiffusionPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    TextToVideoSDPipeline,
)

from .availability import SUPPORTED_TEXT, ModelUnavailable, check_folder, check_hub_model, explain
from .base import DiffusionModel
from .sdxl import StableDiffusionXLModel
from .stable_diffusion import StableDiffusionModel
from .video import AnimateDiffModel, TextToVideoModel

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EMBEDDED_MODEL = ASSETS / "shapes-model"
EMBEDDED_NAMES = {"", "shapes", "embedded", "default"}
EMBEDDED_VIDEO_MODEL = ASSETS / "shapes-video"
EMBEDDED_VIDEO_NAMES = {"shapes-video", "embedded-video"}

_lock = threading.Lock()
_loaded: DiffusionModel | None = None

SUPPORTED_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline",  # model_index.json _class_name
                       "AnimateDiffPipeline", "TextToVideoSDPipeline")


def is_embedded(model_id: str | None) -> bool:
    return model_id is None or model_id.strip().lower() in EMBEDDED_NAMES


def is_embedded_video(model_id: str | None) -> bool:
    return model_id is not None and model_id.strip().lower() in EMBEDDED_VIDEO_NAMES


def resolve(model_id: str | None) -> str:
    """The id or path to load: None and the embedded aliases mean the shipped shapes model (image), the
    video aliases the shipped shapes-video model."""
    if is_embedded_video(model_id):
        return str(EMBEDDED_VIDEO_MODEL)
    return str(EMBEDDED_MODEL) if is_embedded(model_id) else model_id.strip()


def current_model(model_id: str | None) -> DiffusionModel | None:
    """The model in memory if it is `model_id`, without loading anything."""
    loaded = _loaded
    return loaded if loaded is not None and loaded.name == resolve(model_id) else None


def _wrap(pipeline: DiffusionPipeline, name: str) -> DiffusionModel:
    if isinstance(pipeline, AnimateDiffPipeline):
        return AnimateDiffModel(pipeline, name)
    if isinstance(pipeline, TextToVideoSDPipeline):
        return TextToVideoModel(pipeline, name)
    if isinstance(pipeline, StableDiffusionXLPipeline):
        return StableDiffusionXLModel(pipeline, name)
    if isinstance(pipeline, StableDiffusionPipeline):
        return StableDiffusionModel(pipeline, name)
    raise ModelUnavailable(f"{name}: a {type(pipeline).__name__} is not supported yet "
                           f"(supported: {SUPPORTED_TEXT})")


def load_pipeline(name: str, dtype: torch.dtype) -> DiffusionPipeline:
    """diffusers' own loading after a cheap check of model_index.json; every failure is one ModelUnavailable."""
    local = Path(name).expanduser()
    is_hub_id = not local.exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))
    if is_hub_id:
        index = check_hub_model(name, SUPPORTED_PIPELINES)
    else:
        index = check_folder(local, name, SUPPORTED_PIPELINES)
    # Only Stable Diffusion pipelines have a safety checker; other families would warn about the argument.
    no_checker = ({"safety_checker": None, "requires_safety_checker": False}
                  if index["_class_name"] == "StableDiffusionPipeline" else {})
    try:
        return DiffusionPipeline.from_pretrained(
            name if is_hub_id else str(local), dtype=dtype, use_safetensors=True, **no_checker,
        )
    except (OSError, ValueError, KeyError, AttributeError, TypeError, ImportError) as error:
        raise explain(error, name) from None


def load_model(model_id: str | None = None, dtype: torch.dtype | None = None) -> DiffusionModel:
    """The model for `model_id` (None: the embedded default), reusing the one in memory if it matches."""
    global _loaded
    name = resolve(model_id)
    with _lock:
        if _loaded is not None and _loaded.name == name:
            return _loaded
        _loaded = None  # release the previous model before loading the next
        dtype = dtype or (torch.float16 if torch.cuda.is_available() else torch.float32)
        pipeline = load_pipeline(name, dtype)
        if torch.cuda.is_available():
            pipeline.to("cuda")
        _loaded = _wrap(pipeline, name)
        return _loaded
