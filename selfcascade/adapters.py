"""Saving and loading trained upsamplers ("adapters"): safetensors only, checked against the base model.

An adapter is a folder (config.json + diffusion_pytorch_model.safetensors, diffusers' own format) and,
for downloads and uploads, the same weights as one .safetensors file with the config in its metadata.
It records the base model and a fingerprint of that model's UNet config: loading it into another model
is refused with a message. Pickled files (.bin, .pt, .ckpt, .pkl) are never opened.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .models.base import DiffusionModel
from .provenance import public_name
from .stages import InvalidRequest, Size
from .upsampler import FeatureUpsamplers, skip_layout

WEIGHTS = "diffusion_pytorch_model.safetensors"
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}


def unet_fingerprint(unet) -> str:
    """Same for the same architecture and config, wherever the weights were loaded from."""
    config = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_adapter(upsamplers: FeatureUpsamplers, folder: str | Path, size: Size | None = None,
                 model: DiffusionModel | None = None) -> Path:
    """Write the folder and `<folder>/adapter.safetensors` (single file with its config)."""
    folder = Path(folder)
    if size is not None:
        upsamplers.register_to_config(stage_size=list(size))
    if model is not None:  # the model by its id or folder name, not by this machine's path to it
        upsamplers.register_to_config(base_model=public_name(model.name), unet_fingerprint=unet_fingerprint(model.unet))
    upsamplers.save_pretrained(folder, safe_serialization=True)
    config = json.dumps({k: v for k, v in dict(upsamplers.config).items() if not k.startswith("_")})
    state = {k: v.detach().contiguous() for k, v in upsamplers.state_dict().items()}
    save_file(state, folder / "adapter.safetensors", metadata={"selfcascade_config": config})
    return folder


def _read(path: Path) -> FeatureUpsamplers:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidRequest(f"{path.name}: pickled files are refused; an adapter is a .safetensors file")
    if path.is_dir():
        if not (path / WEIGHTS).is_file() or not (path / "config.json").is_file():
            raise InvalidRequest(f"{path}: not an adapter folder (config.json + {WEIGHTS})")
        try:
            return FeatureUpsamplers.from_pretrained(path, use_safetensors=True)
        except (OSError, ValueError, SafetensorError, json.JSONDecodeError) as error:
            raise InvalidRequest(f"{path.name}: the adapter could not be read ({error})") from None
    if path.suffix.lower() != ".safetensors":
        raise InvalidRequest(f"{path.name}: an adapter is a .safetensors file or a folder")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        config = json.loads(metadata["selfcascade_config"])
        upsamplers = FeatureUpsamplers.from_config(config)
        upsamplers.load_state_dict(load_file(str(path)))
        return upsamplers
    except KeyError:
        raise InvalidRequest(f"{path.name}: a safetensors file, but not a Self-Cascade adapter") from None
    except (SafetensorError, OSError, ValueError, RuntimeError, json.JSONDecodeError) as error:
        raise InvalidRequest(f"{path.name}: the adapter file is damaged ({str(error)[:200]})") from None


def load_adapter(path: str | Path, model: DiffusionModel) -> FeatureUpsamplers:
    """Read an adapter and check it fits `model`; InvalidRequest with the reason otherwise."""
    path = Path(path)
    if not path.exists():
        raise InvalidRequest(f"{path}: no such adapter")
    upsamplers = _read(path)
    config = upsamplers.config
    if config.get("time_conditioning") != "output":
        raise InvalidRequest(f"{path.name} was made by an earlier version of Self-Cascade Studio (per-step "
                             "upsamplers); retrain it with this version")
    fingerprint = config.get("unet_fingerprint")
    channels, levels, _ = skip_layout(model.unet)
    if (fingerprint and fingerprint != unet_fingerprint(model.unet)) or list(config.skip_channels) != channels:
        raise InvalidRequest(f"{path.name} was trained for {config.base_model or 'another model'}, "
                             f"not for {model.name}: load it with its own base model")
    if next(upsamplers.parameters()).dtype != model.dtype:  # e.g. an fp16 model on a GPU
        upsamplers = upsamplers.to(dtype=model.dtype)
    return upsamplers.to(model.device).eval()
