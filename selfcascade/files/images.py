"""Images in and out: PNG files that carry every generation parameter in their metadata."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import cap

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


def _check_pixels(image: Image.Image, name: str) -> None:
    """Refuse an image above the upload cap from its header alone (before any pixel is decoded)."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise InvalidRequest(f"{name} is {width}x{height}: larger than the {MAX_IMAGE_PIXELS / 2**20:.0f} "
                             "megapixels accepted")


def read_png_metadata(path: str | Path) -> dict:
    """The parameters a PNG written by `save_png` records ({} for images without them).

    Only the header and text chunks are read (no pixels are decoded). InvalidRequest, naming the file by its
    name and never by its server path, for a file that is not a readable image, an image above the upload
    cap, or a record that is not a JSON object."""
    name = Path(path).name
    try:
        with Image.open(path) as image:
            _check_pixels(image, name)
            text = image.info.get(METADATA_KEY)
    except InvalidRequest:
        raise
    except Image.DecompressionBombError:  # PIL's own guard, at twice its pixel limit
        raise InvalidRequest(f"{name} is larger than the {MAX_IMAGE_PIXELS / 2**20:.0f} megapixels accepted") from None
    except UnidentifiedImageError:
        raise InvalidRequest(f"{name} is not a PNG that can be read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidRequest(f"{name} could not be read: the file is damaged ({str(error)[:120]})") from None
    if not text:
        return {}
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidRequest(f"{name}: its Self-Cascade record is not valid JSON") from None
    if not isinstance(record, dict):
        raise InvalidRequest(f"{name}: its Self-Cascade record is a JSON {type(record).__name__}, not an object")
    return record


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
