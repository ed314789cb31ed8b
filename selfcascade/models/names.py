"""Names of models and adapters: the shipped ones, hub ids, and what a record (a PNG, an adapter) shows.

Files leave the server (downloads, shared PNGs), so they name a model the way a user would type it: the
embedded model as "embedded", a hub id as is, a local folder or file by its name, never by this machine's
absolute path. PNGs written before this rule recorded the embedded model's full path: reading one back
still finds the embedded model.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from selfcascade.files import hosting

# The shipped models, adapters and presets: package data, found through the package wherever it is installed (a
# checkout or site-packages), so one constant for every module that reads them.
ASSETS = Path(str(files("selfcascade") / "assets")).resolve()
EMBEDDED_MODEL = ASSETS / "shapes-model"
EMBEDDED_NAMES = {"", "shapes", "embedded", "default"}
EMBEDDED_VIDEO_MODEL = ASSETS / "shapes-video"
EMBEDDED_VIDEO_NAMES = {"shapes-video", "embedded-video"}
EMBEDDED = "embedded"
SHIPPED_ADAPTER = ASSETS / "shapes-adapter"
# The adapters shipped in ASSETS, by the name a user, a record or the app's adapter lists use for them.
SHIPPED_ADAPTERS = {"shapes-adapter": SHIPPED_ADAPTER, "shapes-video-adapter": ASSETS / "shapes-video-adapter"}
# The model each shipped adapter was trained for: the tuned mode uses it when a request names no adapter.
SHIPPED_FOR = {EMBEDDED_MODEL: "shapes-adapter", EMBEDDED_VIDEO_MODEL: "shapes-video-adapter"}


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


# A hub repository id as the hub allows it: owner/name, letters, digits, "-", "_", ".", at most 96 per part.
HUB_ID = re.compile(r"[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[\w.-]{0,94}[A-Za-z0-9])?", re.ASCII)


def looks_like_hub_id(text: str) -> bool:
    """Whether `text` has the shape of a hub id (owner/name), judged from the text alone: no disk is read."""
    return bool(HUB_ID.fullmatch(text)) and ".." not in text


def is_hub_id(name: str) -> bool:
    """Whether `name` means a hub repository (the one rule, for loading and for records). Locally an existing
    folder wins (owner/name may be a relative folder); on a Space the text alone decides, so a visitor's
    owner/name never reads a relative folder of that name (selfcascade.ui.space_policy)."""
    if hosting.ON_SPACE:
        return looks_like_hub_id(name)
    return looks_like_hub_id(name) and not Path(name).expanduser().exists()


# Files whose name is the same in every folder (written by this project, diffusers, peft): a record shows them
# with their folder's name, the one part that tells them apart.
GENERIC_FILE_NAMES = {"adapter.safetensors", "diffusion_pytorch_model.safetensors", "model.safetensors",
                      "pytorch_lora_weights.safetensors", "adapter_model.safetensors"}


def public_name(name: str | Path | None) -> str | None:
    """The model or adapter as a record may show it: "embedded", a hub id, or a folder/file name."""
    if name is None:
        return None
    text = str(name).strip()
    if is_embedded(text) or Path(text).expanduser().resolve() == EMBEDDED_MODEL:
        return EMBEDDED
    if is_hub_id(text):
        return text
    path = Path(text)
    if path.name.lower() in GENERIC_FILE_NAMES and path.parent.name:  # its folder says which one
        return f"{path.parent.name}/{path.name}"  # (adapter-.../adapter.safetensors)
    return path.name  # a folder, or a file by its own name (a single-file checkpoint, a LoRA file)


def shipped_adapter_for(model: str | None) -> str | None:
    """The name of the adapter shipped for a model as a request names it (None, "embedded", "shapes-video", or
    their folders in ASSETS): "shapes-adapter" or "shapes-video-adapter"; None for any other model, and when
    the shipped folder is missing."""
    try:
        folder = Path(resolve(model)).expanduser().resolve()
    except (OSError, ValueError):  # e.g. a NUL byte in a visitor's text: not a shipped model
        return None
    name = SHIPPED_FOR.get(folder)
    return name if name is not None and SHIPPED_ADAPTERS[name].is_dir() else None


def model_from_record(recorded: str | None) -> str | None:
    """The `model` of a request re-made from a record (None: the embedded model, also for old full paths)."""
    if recorded is None or is_embedded(recorded):
        return None
    path = Path(recorded)
    if path.is_absolute() and path.name == EMBEDDED_MODEL.name and path.parent.name == "assets":
        # a PNG that named the embedded model by its path on the machine that made it: in a folder named
        # "assets" at the checkout's top before the data moved into the package, in the package's since
        return None
    return recorded


def adapter_from_record(recorded: str | None) -> str | None:
    """The adapter of a record: a shipped one by its name (what selfcascade.adapters.files.adapter_location and the
    app's adapter lists take, never this machine's path to it, also for records that held a full path);
    others as recorded (the user may have it)."""
    if not recorded:
        return None
    for name in SHIPPED_ADAPTERS:
        if name in (Path(recorded).name, Path(recorded).parent.name):
            return name
    return recorded
