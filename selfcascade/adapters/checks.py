"""What an adapter file must be before anything is built from it: bounded, typed, its weights what its config builds.

An adapter's config says how big the upsamplers are (skip channels, levels, width, time_dim), and building them
allocates that much: a 1.3 KB upload whose config asked for width 3000 took 1.9 GB, one with 20,000 levels
20 s, before the weights were even compared. So the cheap facts come first, each refused in one line:
the file's size, the size of its safetensors header, the config's types and bounds, then the tensor names,
shapes and dtypes in the header (safe_open reads them without loading a tensor) against what the config
builds on the meta device (no memory). Only a file that passes all of them is loaded; its weights then fit the
file-size cap, so building and loading them is bounded too.

Values from the file that end up in messages (base model, family) must be one short line; tensor names from
the file are never echoed.
"""

from __future__ import annotations

import inspect
import json
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from selfcascade.adapters.designs import DESIGNS
from selfcascade.adapters.upsampler import FeatureUpsamplers
from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import cap

MAX_ADAPTER_BYTES = cap("SELFCASCADE_MAX_ADAPTER_MB", 64, 16) * 2**20  # an SDXL adapter at width 64: ~10 MB
MAX_HEADER_BYTES = 2**20  # names, shapes and the config JSON: a real adapter's header is a few KB
MAX_CONFIG_BYTES = 2**20  # a folder's config.json, likewise
MAX_SKIPS = 64  # UNet skip features; SD and SDXL have 9-12
MAX_CHANNELS = 4096  # per skip feature; SD and SDXL have at most 1280
MAX_LEVEL = 16  # resolution levels (2**level divides the latent size); SD has 4
MAX_WIDTH = 64  # filters per convolution, as training allows (TrainingRequest.width)
MAX_TIME_DIM = 1024  # the timestep embedding; 32 by default
MAX_TEXT = 200  # recorded names (base model, family, fingerprint): shown in messages, one short line
WEIGHT_DTYPES = {"F32", "F16", "BF16"}  # what training and fp16/bf16 copies write; nothing smaller per value
PARAMETERS = set(inspect.signature(FeatureUpsamplers.__init__).parameters) - {"self"}


def _refuse(name: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{name}: not a usable adapter ({problem})")


def check_file_size(path: Path, name: str) -> None:
    """Refuse a file over MAX_ADAPTER_BYTES (an environment variable, SELFCASCADE_MAX_ADAPTER_MB, sets it)."""
    size = path.stat().st_size
    if size > MAX_ADAPTER_BYTES:
        raise _refuse(name, f"{size / 2**20:.1f} MB; adapters here may be up to {MAX_ADAPTER_BYTES / 2**20:g} MB")


def read_header(path: Path, name: str) -> tuple[dict, dict[str, tuple[tuple[int, ...], str]]]:
    """(metadata, {tensor name: (shape, dtype)}) of a .safetensors file, without loading a tensor.

    The header's length (its first 8 bytes) is checked before safetensors parses it. InvalidRequest ("damaged")
    when the file is not a readable safetensors file."""
    check_file_size(path, name)
    try:
        with open(path, "rb") as handle:
            start = handle.read(8)
        if len(start) < 8 or struct.unpack("<Q", start)[0] > MAX_HEADER_BYTES:
            raise SafetensorError("no safetensors header of a sane size")
        with safe_open(str(path), framework="pt") as handle:
            tensors = {}
            for key in handle.keys():
                tensor = handle.get_slice(key)
                tensors[key] = (tuple(tensor.get_shape()), tensor.get_dtype())
            return handle.metadata() or {}, tensors
    except (SafetensorError, OSError, ValueError, struct.error) as error:
        raise InvalidRequest(f"{name}: the adapter file is damaged ({first_line(error)})") from None


def read_json(text: str, name: str, what: str) -> dict:
    """The JSON object in `text` (an adapter's config), or InvalidRequest naming `what` could not be read."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:  # RecursionError: [[[[...]]]] nested past Python's limit
        raise _refuse(name, f"{what} is not JSON: {first_line(error)}") from None
    if not isinstance(value, dict):
        raise _refuse(name, f"{what} is not a JSON object")
    return value


def read_config_file(path: Path, name: str) -> dict:
    """A folder's config.json, bounded in size and parsed."""
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise _refuse(name, f"config.json is over {MAX_CONFIG_BYTES // 2**10} KB")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _refuse(name, f"config.json cannot be read: {first_line(error)}") from None
    return read_json(text, name, "config.json")


def first_line(error: BaseException) -> str:
    """An error's first line, at most 200 characters: messages stay one line. An OSError gives only its reason:
    its text holds the file's path on this machine."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def _whole(value) -> bool:
    return type(value) is int  # not bool, not 8.0


def _int_list(config: dict, key: str, low: int, high: int, name: str, most: int = MAX_SKIPS) -> list[int]:
    value = config.get(key)
    if not isinstance(value, list) or not all(_whole(item) and low <= item <= high for item in value):
        raise _refuse(name, f"{key} must be a list of whole numbers from {low} to {high}")
    if not 1 <= len(value) <= most:
        raise _refuse(name, f"{key} must have 1 to {most} entries, not {len(value)}")
    return value


def _int_field(config: dict, key: str, low: int, high: int, name: str) -> None:
    if key in config and not (_whole(config[key]) and low <= config[key] <= high):
        raise _refuse(name, f"{key} must be a whole number from {low} to {high}")


def _text_field(config: dict, key: str, name: str) -> None:
    value = config.get(key, "")
    if not (isinstance(value, str) and len(value) <= MAX_TEXT and value.isprintable()):
        raise _refuse(name, f"{key} must be one line of at most {MAX_TEXT} characters")


def check_config(config: dict, name: str) -> None:
    """Types and bounds of every field FeatureUpsamplers builds from or a message shows; InvalidRequest otherwise.

    Skip layout: 1..MAX_SKIPS channels (1..MAX_CHANNELS each) with as many levels (0..MAX_LEVEL), and 1 or more
    distinct indices into them; width 1..MAX_WIDTH; time_dim 1..MAX_TIME_DIM; a known design; recorded names
    one short line; the training record a JSON object whose step and frame counts are whole numbers."""
    channels = _int_list(config, "skip_channels", 1, MAX_CHANNELS, name)
    levels = _int_list(config, "skip_levels", 0, MAX_LEVEL, name)
    if len(levels) != len(channels):
        raise _refuse(name, f"{len(channels)} skip_channels but {len(levels)} skip_levels")
    indices = _int_list(config, "skip_indices", 0, len(channels) - 1, name, most=len(channels))
    if len(set(indices)) != len(indices):
        raise _refuse(name, "skip_indices repeat an index")
    _int_field(config, "width", 1, MAX_WIDTH, name)
    _int_field(config, "time_dim", 1, MAX_TIME_DIM, name)
    _int_field(config, "scale", 1, 16, name)
    _int_field(config, "stop_below_timestep", 0, 100_000, name)
    _int_field(config, "latent_channels", 0, MAX_CHANNELS, name)
    if config.get("design", "shared") not in DESIGNS:
        raise _refuse(name, f"unknown design; known: {', '.join(DESIGNS)}")
    for key in ("base_model", "base_family", "unet_fingerprint", "time_conditioning"):
        _text_field(config, key, name)
    stage = config.get("stage_size", [])
    if not (isinstance(stage, list) and len(stage) <= 2 and all(_whole(s) and 1 <= s <= 100_000 for s in stage)):
        raise _refuse(name, "stage_size must be a width and a height")
    training = config.get("training")
    if training is not None and not isinstance(training, dict):
        raise _refuse(name, "training must be a JSON object")
    for key in ("steps", "frames"):  # read back as numbers (resuming adds steps; frames mark a video adapter)
        if training and training.get(key) is not None and not (_whole(training[key]) and training[key] >= 0):
            raise _refuse(name, f"training.{key} must be a whole number")


def buildable(config: dict) -> dict:
    """The config's FeatureUpsamplers arguments only: keys of other versions or other tools are dropped, so
    diffusers neither warns about nor keeps them."""
    return {key: value for key, value in config.items() if key in PARAMETERS}


def expected_tensors(config: dict) -> dict[str, tuple[int, ...]]:
    """{name: shape} of the weights `config` builds, from a build on the meta device (no memory, no init).
    Call after check_config: the bounds keep this build fast."""
    with torch.device("meta"):
        upsamplers = FeatureUpsamplers.from_config(buildable(config))
    return {key: tuple(value.shape) for key, value in upsamplers.state_dict().items()}


def check_tensors(found: dict[str, tuple[tuple[int, ...], str]], config: dict, name: str) -> None:
    """The file's tensors are exactly those `config` builds, same shapes, in a float dtype; InvalidRequest otherwise."""
    expected = expected_tensors(config)
    missing, extra = expected.keys() - found.keys(), found.keys() - expected.keys()
    if missing or extra:
        raise _refuse(name, f"its config builds {len(expected)} weights; the file lacks {len(missing)} of them "
                            f"and holds {len(extra)} others")
    for key, shape in expected.items():
        if found[key][0] != shape:
            raise _refuse(name, f"{key} is {list(found[key][0])} where its config builds {list(shape)}")
        if found[key][1] not in WEIGHT_DTYPES:
            raise _refuse(name, f"{key} is stored as {found[key][1]}; adapters are float32, float16 or bfloat16")
