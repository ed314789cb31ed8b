"""Uploads a user might send that cannot be used, written to a test folder; and zips to build them in."""

import zipfile
from io import BytesIO

from PIL import Image


def make_bad_image(folder, kind: str, valid_side: int = 64) -> str:
    """'text' (not an image), 'corrupt' (truncated PNG), 'tiny' (1x1), 'small' (32x32), 'huge' (10000x10000)."""
    path = folder / f"{kind}.png"
    if kind == "text":
        path.write_text("not an image")
    elif kind == "corrupt":
        Image.new("RGB", (valid_side, valid_side), "red").save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif kind == "tiny":
        Image.new("RGB", (1, 1)).save(path)
    elif kind == "small":
        Image.new("RGB", (32, 32)).save(path)
    elif kind == "huge":
        Image.new("1", (10000, 10000)).save(path)  # 1-bit: small on disk, 100 megapixels in its header
    return str(path)


def png_bytes(colour="red", side: int = 160) -> bytes:
    """A plain PNG, as bytes to put in a zip."""
    buffer = BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(path, entries: dict) -> str:
    """A zip at `path` holding {name: bytes or text}, names written as given (even ../ or absolute ones)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return str(path)
