"""Training clips for a video model's upsamplers: short videos (mp4, gif, webp, ...) or folders of frames,
checked once on load, then random runs of consecutive frames with one crop per clip.

The paper tunes the video model's upsamplers like the image model's (docs/video-model.md): Algorithm 1 on
frames, with the temporal layers frozen. The video UNet needs whole clips (its motion layers mix frames),
so a training batch is `count` clips of `frames` consecutive frames, laid out frames fastest like the
cascade's folded latents: (count * frames, 3, H, W). A clip's caption is the .txt of the same name beside the
video (or beside the folder of frames: `run1/` -> `run1.txt`), else the shared caption.

What is refused, each with one line naming the file: unreadable or damaged videos, clips with fewer frames
than a training run needs, frames smaller than the stage size, videos over MAX_CLIP_PIXELS per frame.
Reading stops after MAX_CLIP_FRAMES frames (a long video teaches no more than its first seconds here).
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image, ImageSequence, UnidentifiedImageError

from selfcascade.cascade.stages import Size
from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import cap
from selfcascade.training.data.images import (
    ANIMATED_SUFFIXES,
    IMAGE_SUFFIXES,
    at_most_twice_the_detail,
    crop_box,
    frame_count,
    image_files,
    sidecar_caption,
    to_pixels,
    training_image,
)

VIDEO_TRAIN_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif", ".webp"}  # GIF, WebP: when animated
MOVIE_SUFFIXES = VIDEO_TRAIN_SUFFIXES - ANIMATED_SUFFIXES  # always videos, read through moviepy (ffmpeg)
MAX_CLIP_FRAMES = cap("SELFCASCADE_MAX_CLIP_FRAMES", 128, 64)  # frames read from one video (all stay in memory)
MAX_CLIP_PIXELS = cap("SELFCASCADE_MAX_CLIP_PIXELS", 4 * 2**20, 2 * 2**20)  # per frame


def is_clip_source(path: str | Path) -> bool:
    """A video file, an animated GIF or WebP (one that cannot be opened too: reading it as a clip says why),
    or a folder (of frames). A still GIF or WebP is an image, like a PNG."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() in MOVIE_SUFFIXES:
        return True
    return path.suffix.lower() in ANIMATED_SUFFIXES and frame_count(path) != 1


def _is_frame(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not is_clip_source(path)


def _holds_frames(folder: Path) -> bool:
    """Whether a sub-folder holds images (a clip's frames); an unreadable one does not."""
    try:
        return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())
    except OSError:
        return False


def clip_sources(folder: str | Path) -> list[str]:
    """The clips in a folder: its videos (animated GIF, WebP included) and its sub-folders of frames; or the
    folder itself when it only holds frames. InvalidRequest when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidRequest(f"{folder}: no such folder")
    entries = sorted(folder.iterdir())
    sources = [str(p) for p in entries if p.is_dir() and _holds_frames(p)]
    sources += [str(p) for p in entries if p.is_file() and is_clip_source(p)]
    if not sources and any(_is_frame(p) for p in entries):
        sources = [str(folder)]
    if not sources:
        raise InvalidRequest(f"{folder}: no videos (mp4, gif, webp, ...) or folders of frames in it")
    return sorted(sources)


def as_clip_sources(paths: list[str]) -> list[str]:
    """Training inputs as clips: videos and folders stay, loose frames (still images) become the folder that
    holds them (the CLI and the Train tab list the frames of a folder one by one)."""
    sources: list[str] = []
    for path in map(Path, paths):
        source = str(path.parent if _is_frame(path) else path)
        if source not in sources:
            sources.append(source)
    return sources


def training_inputs(folder: str | Path) -> list[str]:
    """What `python -m selfcascade train --images FOLDER` trains on: its clips when it holds videos (mp4, ...) or
    sub-folders of frames, else its images (for a video model, the folder's frames are then one clip).
    Sub-folders without images are not clips: a folder with no images is refused as such."""
    path = Path(folder)
    if path.is_dir() and any(p.suffix.lower() in MOVIE_SUFFIXES or (p.is_dir() and _holds_frames(p))
                             for p in path.iterdir()):
        return clip_sources(path)
    return image_files(path)


def refuse_clips(paths: list[str], model_name: str) -> None:
    """InvalidRequest when an image model is handed videos or folders of frames (a video model's clips). An
    animated GIF or WebP is refused with its own reason when the images are read (dataset.still_image)."""
    for path in map(Path, paths):
        if path.is_dir() or path.suffix.lower() in MOVIE_SUFFIXES:
            raise InvalidRequest(f"{model_name} is an image model: it trains on images, not on videos or folders "
                                 f"of clips (those teach a video model; {path.name} is one)")


def _fit(frame: Image.Image, name: str, size: Size) -> Image.Image:
    if frame.width * frame.height > MAX_CLIP_PIXELS:
        raise InvalidRequest(f"{name} is {frame.width}x{frame.height}: larger than the "
                             f"{MAX_CLIP_PIXELS / 2**20:.0f} megapixels per frame accepted")
    if frame.width < size[0] or frame.height < size[1]:
        raise InvalidRequest(f"{name} is {frame.width}x{frame.height}: smaller than the stage size "
                             f"{size[0]}x{size[1]} it would teach")
    return frame.convert("RGB")


def _animated_frames(path: Path, size: Size) -> list[Image.Image]:
    with Image.open(path) as image:
        if image.width * image.height > MAX_CLIP_PIXELS:  # the header, before any pixels are decoded
            _fit(image, path.name, size)
        frames = []
        for frame in ImageSequence.Iterator(image):
            frames.append(_fit(frame.copy(), path.name, size))
            if len(frames) == MAX_CLIP_FRAMES:
                break
        return frames


def _movie_frames(path: Path, size: Size) -> list[Image.Image]:
    from moviepy import VideoFileClip

    with VideoFileClip(str(path), audio=False) as clip:
        width, height = clip.size
        if width * height > MAX_CLIP_PIXELS:
            _fit(Image.new("RGB", (width, height)), path.name, size)
        frames = []
        for array in clip.iter_frames(dtype="uint8"):
            frames.append(_fit(Image.fromarray(array), path.name, size))
            if len(frames) == MAX_CLIP_FRAMES:
                break
        return frames


def read_clip(source: str | Path, size: Size, frames: int) -> list[Image.Image]:
    """The frames of one clip as RGB images, or InvalidRequest saying why it cannot teach `frames` x `size`."""
    path = Path(source)
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if _is_frame(p))[:MAX_CLIP_FRAMES]
            images = [training_image(p, size) for p in files]
        elif path.suffix.lower() in ANIMATED_SUFFIXES:
            images = _animated_frames(path, size)
        elif path.suffix.lower() in MOVIE_SUFFIXES:
            images = _movie_frames(path, size)
        else:
            raise InvalidRequest(f"{path.name} is not a video (mp4, gif, webp, ...) or a folder of frames")
    except InvalidRequest:
        raise
    except (OSError, UnidentifiedImageError, ValueError, RuntimeError, KeyError):
        # moviepy/ffmpeg and Pillow fail on damaged files in these ways; the message names the file only.
        raise InvalidRequest(f"{path.name} is not a video that can be read (damaged or an unknown format)") from None
    if len(images) < frames:
        raise InvalidRequest(f"{path.name} has {len(images)} frame(s): a training clip needs at least {frames}")
    sizes = {image.size for image in images}
    if len(sizes) > 1:
        raise InvalidRequest(f"{path.name}: its frames differ in size ({', '.join(f'{w}x{h}' for w, h in sizes)})")
    return images


def usable_clips(sources: list[str], size: Size, frames: int) -> tuple[list[str], list[str]]:
    """The sources that can teach `frames` x `size`, and one line for each that cannot."""
    usable, reasons = [], []
    for source in sources:
        try:
            read_clip(source, size, frames)
            usable.append(source)
        except InvalidRequest as error:
            reasons.append(str(error))
    return usable, reasons


class TrainingClips:
    """Clips + captions; `batch` draws runs of `frames` consecutive frames, one random crop per clip."""

    def __init__(self, sources: list[str], size: Size, multiple: int, frames: int, caption: str = ""):
        if not sources:
            raise InvalidRequest("no training clips: upload short videos (mp4, gif) or give a folder of them")
        if size[0] % multiple or size[1] % multiple:
            raise InvalidRequest(f"stage size {size[0]}x{size[1]} must be a multiple of {multiple}")
        self.size, self.frames = size, frames
        self.clips: list[list[Image.Image]] = []
        self.captions: list[str] = []
        for source in sources:
            self.clips.append(at_most_twice_the_detail(read_clip(source, size, frames), size))
            own = sidecar_caption(Path(source))
            self.captions.append(caption if own is None else own)

    def batch(self, count: int, rng: random.Random) -> tuple[torch.Tensor, list[str]]:
        """`count` clips as (count * frames, 3, H, W) in [-1, 1], frames fastest; one caption per frame."""
        crops, captions = [], []
        for _ in range(count):
            index = rng.randrange(len(self.clips))
            clip = self.clips[index]
            start = rng.randint(0, len(clip) - self.frames)
            box = crop_box(clip[0], self.size, rng)  # one crop for the whole clip: the motion stays intact
            crops += [frame.crop(box) for frame in clip[start:start + self.frames]]
            captions += [self.captions[index]] * self.frames
        return to_pixels(crops), captions
