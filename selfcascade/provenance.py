"""What a PNG or an adapter records about the model it came from, and reading those records back.

Files leave the server (downloads, shared PNGs), so they name a model the way a user would type it: the
embedded model as "embedded", a hub id as is, a local folder or file by its name, never by this machine's
absolute path. PNGs written before this rule recorded the embedded model's full path: reading one back
still finds the embedded model.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from selfcascade.models.loader import ASSETS, EMBEDDED_MODEL, EMBEDDED_VIDEO_MODEL, is_embedded, resolve
from selfcascade.request import GenerationRequest
from selfcascade.stages import InvalidRequest

EMBEDDED = "embedded"
SHIPPED_ADAPTER = ASSETS / "shapes-adapter"
# The adapters shipped in assets/, by the name a user, a record or the app's adapter lists use for them.
SHIPPED_ADAPTERS = {"shapes-adapter": SHIPPED_ADAPTER, "shapes-video-adapter": ASSETS / "shapes-video-adapter"}
# The model each shipped adapter was trained for: the tuned mode uses it when a request names no adapter.
SHIPPED_FOR = {EMBEDDED_MODEL: "shapes-adapter", EMBEDDED_VIDEO_MODEL: "shapes-video-adapter"}


def _is_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).exists()


def public_name(name: str | Path | None) -> str | None:
    """The model or adapter as a record may show it: "embedded", a hub id, or a folder/file name."""
    if name is None:
        return None
    text = str(name).strip()
    if is_embedded(text) or Path(text).expanduser().resolve() == EMBEDDED_MODEL:
        return EMBEDDED
    if _is_hub_id(text):
        return text
    path = Path(text)
    if path.suffix and path.parent.name:  # a file: its folder says which one (adapter-.../adapter.safetensors)
        return f"{path.parent.name}/{path.name}"
    return path.name


def shipped_adapter_for(model: str | None) -> str | None:
    """The name of the adapter shipped for a model as a request names it (None, "embedded", "shapes-video", or
    their folders in assets/): "shapes-adapter" or "shapes-video-adapter"; None for any other model, and when
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
    if path.is_absolute() and path.name == EMBEDDED_MODEL.name and path.parent.name == ASSETS.name:
        return None  # an older PNG that named the embedded model by its path on the machine that made it
    return recorded


def adapter_from_record(recorded: str | None) -> str | None:
    """The adapter of a record: a shipped one by its name (what selfcascade.adapters.adapter_location and the
    app's adapter lists take, never this machine's path to it, also for records that held a full path);
    others as recorded (the user may have it)."""
    if not recorded:
        return None
    for name in SHIPPED_ADAPTERS:
        if name in (Path(recorded).name, Path(recorded).parent.name):
            return name
    return recorded


def request_from_metadata(metadata: dict) -> GenerationRequest:
    """The request that made a PNG (its `selfcascade` metadata), checked like any request, ready to run again;
    unknown keys ignored. A record is a visitor's file: any JSON type or value in it gives InvalidRequest."""
    names = {field.name for field in fields(GenerationRequest)} - {"extra", "max_side"}
    values = {key: value for key, value in metadata.items() if key in names}
    if "prompt" not in values or "width" not in values or "height" not in values:
        raise InvalidRequest("this PNG carries no Self-Cascade settings (it was not made by this app)")
    for key in ("model", "adapter"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise InvalidRequest(f"the recorded {key} must be text, not {type(values[key]).__name__}")
    values["model"] = model_from_record(values.get("model"))
    values["adapter"] = adapter_from_record(values.get("adapter"))
    request = GenerationRequest(**values)
    request.check()
    return request
