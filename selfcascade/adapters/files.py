"""Saving and loading trained upsamplers ("adapters"): safetensors only, checked against the base model.

An adapter is a folder (config.json + diffusion_pytorch_model.safetensors, diffusers' own format), the same
weights as one .safetensors file with the config in its metadata (for downloads and uploads), and a short
model card (README.md). It records what it was trained for: the base model by its public name, its family,
latent channels, skip layout and a fingerprint of its UNet config, and the training run (stage size, steps,
final loss, timestep range, date). Loading it into another model is refused with a message naming the
difference. Pickled files (.bin, .pt, .ckpt, .pkl) are never opened, and a file's size, config and tensor
shapes are checked before anything is built from it (selfcascade.adapters.checks). Messages name an adapter by
its public name, never by this machine's path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from selfcascade.adapters.card import safetensors_metadata, write_model_card
from selfcascade.adapters.checks import (
    buildable,
    check_config,
    check_tensors,
    first_line,
    read_config_file,
    read_header,
    read_json,
)
from selfcascade.adapters.upsampler import FeatureUpsamplers, skip_layout
from selfcascade.errors import InvalidRequest
from selfcascade.models.base import DiffusionModel
from selfcascade.models.names import SHIPPED_ADAPTERS, public_name

WEIGHTS = "diffusion_pytorch_model.safetensors"
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}


def unet_fingerprint(unet) -> str:
    """Same for the same architecture and config, wherever the weights were loaded from."""
    config = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_adapter(upsamplers: FeatureUpsamplers, folder: str | Path, size: tuple[int, int] | None = None,
                 model: DiffusionModel | None = None, training: dict | None = None) -> Path:
    """Write the folder, `<folder>/adapter.safetensors` (single file with its config) and its README.md."""
    folder = Path(folder)
    if size is not None:
        upsamplers.register_to_config(stage_size=list(size))
    if model is not None:  # the model by its id or folder name, not by this machine's path to it
        upsamplers.register_to_config(base_model=public_name(model.name), unet_fingerprint=unet_fingerprint(model.unet),
                                      base_family=model.family, latent_channels=int(model.unet.config.in_channels))
    if training is not None:
        upsamplers.register_to_config(training=training)
    upsamplers.save_pretrained(folder, safe_serialization=True)
    config = {k: v for k, v in dict(upsamplers.config).items() if not k.startswith("_")}
    state = {k: v.detach().contiguous() for k, v in upsamplers.state_dict().items()}
    save_file(state, folder / "adapter.safetensors", metadata=safetensors_metadata(config))
    write_model_card(folder, config, sum(v.numel() for v in state.values()))
    return folder


def adapter_location(name: str | Path) -> Path:
    """Where an adapter is: a shipped adapter's name ("shapes-adapter", "shapes-video-adapter") means its folder in
    the package's assets (models.names.ASSETS), like "embedded" for the model; anything else is a path."""
    return SHIPPED_ADAPTERS.get(str(name).strip(), Path(name))


def _read(path: Path) -> FeatureUpsamplers:
    """The upsamplers in an adapter folder or .safetensors file, built only after adapter_checks passes them.

    Messages name the adapter by its file or folder name, never by this machine's path to it."""
    name = path.name
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidRequest(f"{path.name}: pickled files are refused; an adapter is a .safetensors file")
    if path.is_dir():
        weights = path / WEIGHTS
        if not weights.is_file() or not (path / "config.json").is_file():
            raise InvalidRequest(f"{name}: not an adapter folder (config.json + {WEIGHTS})")
        config = read_config_file(path / "config.json", name)
        _, tensors = read_header(weights, name)
    elif path.suffix.lower() != ".safetensors":
        raise InvalidRequest(f"{path.name}: an adapter is a .safetensors file or a folder")
    else:
        weights = path
        metadata, tensors = read_header(path, name)
        if "selfcascade_config" not in metadata:
            raise InvalidRequest(f"{path.name}: a safetensors file, but not a Self-Cascade adapter")
        config = read_json(metadata["selfcascade_config"], name, "its selfcascade_config")
    check_config(config, name)
    check_tensors(tensors, config, name)  # before anything is allocated: the shapes fit the size-capped file
    try:
        upsamplers = FeatureUpsamplers.from_config(buildable(config))
        upsamplers.load_state_dict(load_file(str(weights)))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise InvalidRequest(f"{name}: the adapter file is damaged ({first_line(error)})") from None
    return upsamplers


def read_adapter_config(path: str | Path) -> dict:
    """An adapter's config (what it was trained for), or InvalidRequest when it is not a readable adapter.
    `path` may be a shipped adapter's name (adapter_location)."""
    return dict(_read(adapter_location(path)).config)


def check_adapter_fits(config, model: DiffusionModel, name: str) -> None:
    """InvalidRequest naming the difference when an adapter's record does not fit `model`: family, latent
    channels, skip layout, then UNet config. Records made before a field existed skip that check."""
    base, here = config.get("base_model") or "another model", public_name(model.name)
    family = config.get("base_family")
    if family and family != model.family:
        raise InvalidRequest(f"{name} was trained for {base} ({family}), not for {here} ({model.family}): "
                             "load it with its own base model")
    latent_channels, channels = config.get("latent_channels"), int(model.unet.config.in_channels)
    if latent_channels and latent_channels != channels:
        raise InvalidRequest(f"{name} was trained for {base} on {latent_channels}-channel latents; {here} has "
                             f"{channels}-channel latents: load it with its own base model")
    layout = [list(part) for part in skip_layout(model.unet)]
    recorded = [list(config.get(key) or ()) for key in ("skip_channels", "skip_levels", "skip_indices")]
    if recorded != layout:
        raise InvalidRequest(f"{name} was trained for {base}, whose UNet skip channels are {recorded[0]}; "
                             f"{here}'s are {layout[0]}: load it with its own base model")
    fingerprint = config.get("unet_fingerprint")
    if fingerprint and fingerprint != unet_fingerprint(model.unet):
        raise InvalidRequest(f"{name} was trained for {base}, not for {here} (another UNet configuration): "
                             "load it with its own base model")


def check_usable(config, model: DiffusionModel, name: str) -> None:
    """InvalidRequest when an adapter of this config cannot drive `model`: an earlier, per-step design, or made
    for another model (check_adapter_fits)."""
    if config.get("time_conditioning") != "output":
        raise InvalidRequest(f"{name} was made by an earlier version of Self-Cascade Studio (per-step "
                             "upsamplers); retrain it with this version")
    check_adapter_fits(config, model, name)


def load_adapter(path: str | Path, model: DiffusionModel) -> FeatureUpsamplers:
    """Read an adapter (a folder, a .safetensors file or a shipped adapter's name) and check it fits `model`;
    InvalidRequest with the reason otherwise."""
    path = adapter_location(path)
    if not path.exists():
        raise InvalidRequest(f"{public_name(path)}: no such adapter")
    upsamplers = _read(path)
    check_usable(upsamplers.config, model, path.name)
    if next(upsamplers.parameters()).dtype != model.dtype:  # e.g. an fp16 model on a GPU
        upsamplers = upsamplers.to(dtype=model.dtype)
    return upsamplers.to(model.device).eval()
