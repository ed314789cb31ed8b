"""Images in and out: PNG files that carry every generation parameter in their metadata."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from selfcascade.errors import InvalidRequest
from selfcascade.files.a1111 import from_a1111, to_a1111
from selfcascade.files.hosting import cap

METADATA_KEY = "selfcascade"
PARAMETERS_KEY = "parameters"  # A1111's text chunk, which other tools read (selfcascade.files.a1111)


def save_png(image: Image.Image, path: str | Path, metadata: dict) -> Path:
    """Write `image` as PNG with `metadata` as JSON in the `selfcascade` text chunk, and as A1111's generation
    parameters in the `parameters` chunk (what the A1111 WebUI, Civitai and exiftool users read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
    info.add_text(PARAMETERS_KEY, to_a1111(metadata))
    image.save(path, format="PNG", pnginfo=info)
    return path


def _check_pixels(image: Image.Image, name: str) -> None:
    """Refuse an image above the upload cap from its header alone (before any pixel is decoded)."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise InvalidRequest(f"{name} is {width}x{height}: larger than the {MAX_IMAGE_PIXELS / 2**20:.0f} "
                             "megapixels accepted")


def read_png_metadata(path: str | Path) -> dict:
    """The parameters a PNG records ({} for images without them): the JSON record `save_png` writes under
    `selfcascade` (PNGs made before A1111's format also hold it under `parameters`), else the keys of an
    A1111 `parameters` text (a PNG made by the A1111 WebUI, or one a site re-saved with that chunk only).

    Only the header and text chunks are read (no pixels are decoded). InvalidRequest, naming the file by its
    name and never by its server path, for a file that is not a readable image, an image above the upload
    cap, a record that is not a JSON object, or a `parameters` text that is not A1111's (too long, a value
    of the wrong kind)."""
    name = Path(path).name
    try:
        with Image.open(path) as image:
            _check_pixels(image, name)
            text = image.info.get(METADATA_KEY)
            parameters = image.info.get(PARAMETERS_KEY)
    except InvalidRequest:
        raise
    except Image.DecompressionBombError:  # PIL's own guard, at twice its pixel limit
        raise InvalidRequest(f"{name} is larger than the {MAX_IMAGE_PIXELS / 2**20:.0f} megapixels accepted") from None
    except UnidentifiedImageError:
        raise InvalidRequest(f"{name} is not a PNG that can be read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidRequest(f"{name} could not be read: the file is damaged ({str(error)[:120]})") from None
    if not text and isinstance(parameters, str) and parameters.strip():
        earlier = _json_object(parameters)  # JSON under `parameters` only: a PNG of an earlier version
        if earlier is not None:
            return earlier
        try:
            return from_a1111(str(parameters))
        except InvalidRequest as error:
            raise InvalidRequest(f"{name}: {error}") from None
    if not text:
        return {}
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidRequest(f"{name}: its Self-Cascade record is not valid JSON") from None
    if not isinstance(record, dict):
        raise InvalidRequest(f"{name}: its Self-Cascade record is a JSON {type(record).__name__}, not an object")
    return record


def _json_object(text: str) -> dict | None:
    """`text` as a JSON object, or None (an A1111 prompt may start with "{" too: {red|blue} ball)."""
    try:
        value = json.loads(text) if text.lstrip().startswith("{") else None
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


MIN_IMAGE_SIDE = 16
MAX_IMAGE_PIXELS = cap("SELFCASCADE_MAX_IMAGE_PIXELS", 64 * 2**20, 16 * 2**20)  # uploads; 16 MP on a Space


def load_user_image(path: str | Path) -> Image.Image:
    """Open a user's upload as RGB, with a clear InvalidRequest for what cannot be used.

    The header is read first, so a huge image is refused before its pixels are decoded.
    """
    name = Path(path).name
    try:
        with Image.open(path) as image:
            _check_pixels(image, name)
            width, height = image.size
            if min(width, height) < MIN_IMAGE_SIDE:
                raise InvalidRequest(f"{name} is {width}x{height}: at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} "
                                     "is needed")
            image.load()
            return ImageOps.exif_transpose(image).convert("RGB")
    except InvalidRequest:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise InvalidRequest(f"{name} is not an image that can be read (PNG, JPEG, WebP, ...)") from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
        raise InvalidRequest(f"{name} could not be read: the file is damaged ({error})") from None
