"""Training images for the upsamplers: checked once on load, then random crops at the stage size."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from selfcascade.cascade.stages import Size
from selfcascade.errors import InvalidRequest
from selfcascade.files.images import load_user_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
ANIMATED_SUFFIXES = {".gif", ".webp"}  # image formats that may hold a video's frames: a still one is an image
MAX_CAPTION_CHARS = 1000  # the text encoders read 77 tokens; a longer .txt is not a caption


def image_files(folder: str | Path) -> list[str]:
    """The images in a folder (sorted), or a clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidRequest(f"{folder}: no such folder")
    files = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidRequest(f"{folder}: no images (png, jpg, webp, bmp, gif, tif) in it")
    return files


def frame_count(path: str | Path) -> int | None:
    """The frames in an image file: 1 for a still image (any PNG, JPEG, ...), N for an animated GIF or WebP;
    None for a GIF or WebP that cannot be opened. Reads the headers only: no frame is decoded."""
    if Path(path).suffix.lower() not in ANIMATED_SUFFIXES:
        return 1
    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def still_image(path: str | Path) -> None:
    """InvalidRequest when an image model is handed an animated GIF or WebP: it would learn from the first
    frame alone, which is not what the user meant."""
    frames = frame_count(path)
    if frames is not None and frames > 1:
        raise InvalidRequest(f"{Path(path).name} is animated ({frames} frames): an image model trains on still "
                             "images (use a still image, or a video model)")


def sidecar_caption(image_path: str | Path) -> str | None:
    """The caption in the .txt of the same name beside an image (None without one)."""
    text = Path(image_path).with_suffix(".txt")
    if not text.is_file():
        return None
    with open(text, "rb") as handle:  # read a bounded amount: a huge .txt must not fill the memory
        raw = handle.read(MAX_CAPTION_CHARS * 4)
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip()[:MAX_CAPTION_CHARS]


def training_image(path: str | Path, size: Size) -> Image.Image:
    """One training image as RGB, or InvalidRequest saying why it cannot teach `size`."""
    image = load_user_image(path)
    if image.width < size[0] or image.height < size[1]:
        raise InvalidRequest(f"{Path(path).name} is {image.width}x{image.height}: smaller than the stage "
                             f"size {size[0]}x{size[1]} it would teach")
    return image


def still_training_image(path: str | Path, size: Size) -> Image.Image:
    """An image model's training image: `training_image`, refused when it is animated."""
    still_image(path)
    return training_image(path, size)


def usable_images(paths: list[str], size: Size) -> tuple[list[str], list[str]]:
    """The paths an image model can learn `size` from, and one line for each that cannot (unreadable, damaged,
    too small, animated)."""
    usable, reasons = [], []
    for path in paths:
        try:
            still_training_image(path, size)
            usable.append(path)
        except InvalidRequest as error:
            reasons.append(str(error))
    return usable, reasons


def at_most_twice_the_detail(frames: list[Image.Image], size: Size) -> list[Image.Image]:
    """Frames of one image or clip scaled down (Lanczos) to at most 2x the stage size's detail per side:
    a random crop then still shows a good part of the picture, and memory stays bounded."""
    scale = max(size[0] / frames[0].width, size[1] / frames[0].height) * 2
    if scale >= 1:
        return frames
    shape = (round(frames[0].width * scale), round(frames[0].height * scale))
    return [frame.resize(shape, Image.Resampling.LANCZOS) for frame in frames]


def crop_box(image: Image.Image, size: Size, rng: random.Random) -> tuple[int, int, int, int]:
    """A random stage-size box inside `image`."""
    x = rng.randint(0, image.width - size[0])
    y = rng.randint(0, image.height - size[1])
    return x, y, x + size[0], y + size[1]


def to_pixels(crops: list[Image.Image]) -> torch.Tensor:
    """RGB crops -> (N, 3, H, W) in [-1, 1]."""
    arrays = np.stack([np.asarray(crop, dtype=np.float32) for crop in crops])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1


class TrainingImages:
    """Images + captions (a .txt beside an image wins over the shared caption)."""

    def __init__(self, paths: list[str], size: Size, multiple: int, caption: str = ""):
        if not paths:
            raise InvalidRequest("no training images: upload some, or use the example images")
        if size[0] % multiple or size[1] % multiple:
            raise InvalidRequest(f"stage size {size[0]}x{size[1]} must be a multiple of {multiple}")
        self.size = size
        self.images: list[Image.Image] = []
        self.captions: list[str] = []
        for path in paths:
            self.images += at_most_twice_the_detail([still_training_image(path, size)], size)
            own = sidecar_caption(path)
            self.captions.append(caption if own is None else own)

    def batch(self, count: int, rng: random.Random) -> tuple[torch.Tensor, list[str]]:
        """`count` random crops at the stage size as (B, 3, H, W) in [-1, 1], with their captions."""
        crops, captions = [], []
        for _ in range(count):
            index = rng.randrange(len(self.images))
            image = self.images[index]
            crops.append(image.crop(crop_box(image, self.size, rng)))
            captions.append(self.captions[index])
        return to_pixels(crops), captions
