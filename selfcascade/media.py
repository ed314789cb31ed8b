"""Images in and out: PNG files that carry every generation parameter in their metadata."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, PngImagePlugin

METADATA_KEY = "selfcascade"


def save_png(image: Image.Image, path: str | Path, metadata: dict) -> Path:
    """Write `image` as PNG with `metadata` as JSON in a text chunk (and as 'parameters', which tools read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    text = json.dumps(metadata, sort_keys=True)
    info.add_text(METADATA_KEY, text)
    info.add_text("parameters", text)
    image.save(path, format="PNG", pnginfo=info)
    return path


def read_png_metadata(path: str | Path) -> dict:
    """The parameters a PNG written by `save_png` records ({} for other images)."""
    with Image.open(path) as image:
        text = image.info.get(METADATA_KEY)
    return json.loads(text) if text else {}
