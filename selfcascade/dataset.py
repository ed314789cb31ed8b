"""Training images for the upsamplers: checked once on load, then random crops at the stage size."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .media import load_user_image
from .stages import InvalidRequest, Size

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def image_files(folder: str | Path) -> list[str]:
    """The images in a folder (sorted), or a clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidRequest(f"{folder}: no such folder")
    files = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InvalidRequest(f"{folder}: no images (png, jpg, webp, bmp) in it")
    return files


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
            image = load_user_image(path)
            if image.width < size[0] or image.height < size[1]:
                raise InvalidRequest(f"{Path(path).name} is {image.width}x{image.height}: smaller than the stage "
                                     f"size {size[0]}x{size[1]} it would teach")
            scale = max(size[0] / image.width, size[1] / image.height) * 2  # keep at most 2x the crop's detail
            if scale < 1:
                image = image.resize((round(image.width * scale), round(image.height * scale)),
                                     Image.Resampling.LANCZOS)
            self.images.append(image)
            text = Path(path).with_suffix(".txt")
            self.captions.append(text.read_text().strip() if text.is_file() else caption)

    def batch(self, count: int, rng: random.Random) -> tuple[torch.Tensor, list[str]]:
        """`count` random crops at the stage size as (B, 3, H, W) in [-1, 1], with their captions."""
        crops, captions = [], []
        for _ in range(count):
            index = rng.randrange(len(self.images))
            image = self.images[index]
            x = rng.randint(0, image.width - self.size[0])
            y = rng.randint(0, image.height - self.size[1])
            crops.append(np.asarray(image.crop((x, y, x + self.size[0], y + self.size[1])), dtype=np.float32))
            captions.append(self.captions[index])
        pixels = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2) / 127.5 - 1
        return pixels, captions
