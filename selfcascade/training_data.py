"""What a user hands the Train tab (uploaded images, .txt captions, zips, a folder path) -> checked image paths.

Uploads arrive one per temporary folder, so an image and its caption would not sit side by side: they are
copied into one staging folder (zips unpacked there, see archive.py), where `dataset.sidecar_caption`
pairs them by name. Files that cannot teach the stage size are skipped with a note; when none is left, or
there are too many, the request is refused with one clear line.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .archive import unpack_training_zip
from .dataset import IMAGE_SUFFIXES, image_files, sidecar_caption, usable_images
from .training_clips import VIDEO_TRAIN_SUFFIXES, as_clip_sources, training_inputs, usable_clips
from .hosting import ON_SPACE, cap
from .stages import InvalidRequest, Size

MAX_TRAINING_IMAGES = cap("SELFCASCADE_MAX_TRAIN_IMAGES", 1000, 200)  # all are held in memory while training
MAX_TRAINING_CLIPS = cap("SELFCASCADE_MAX_TRAIN_CLIPS", 100, 30)  # x 128 frames each, held in memory


@dataclass
class TrainingData:
    images: list[str]
    notes: list[str] = field(default_factory=list)  # one line each: what was skipped, and why

    clips: bool = False  # `images` are a video model's clips (videos, folders of frames)

    def describe(self) -> str:
        """'12 images, 9 with a caption of their own'."""
        own = sum(sidecar_caption(path) is not None for path in self.images)
        return f"{len(self.images)} {'clip' if self.clips else 'image'}(s), {own} with a caption of their own (.txt)"


def _summary(reasons: list[str], what: str) -> str:
    shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    return f"skipped {len(reasons)} {what}: {shown}"


def _stage_uploads(uploads: list[str], staging: Path) -> list[str]:
    """Copy images and captions into `staging/uploads`, unpack zips beside; returns notes."""
    notes, skipped = [], []
    flat = staging / "uploads"
    flat.mkdir(parents=True, exist_ok=True)
    for index, upload in enumerate(uploads):
        source = Path(upload)
        suffix = source.suffix.lower()
        if suffix == ".zip":
            notes += unpack_training_zip(source, staging / f"zip{index}-{source.stem}")
        elif suffix in IMAGE_SUFFIXES or suffix in VIDEO_TRAIN_SUFFIXES or suffix == ".txt":
            target = flat / source.name
            if target.exists():
                notes.append(f"{source.name} was uploaded twice: one copy is used")
            else:
                shutil.copyfile(source, target)
        else:
            skipped.append(source.name)
    if skipped:
        notes.append(f"skipped {', '.join(skipped)}: not an image, a video, a .txt caption or a .zip")
    return notes


def _local_folder(folder: str, clips: bool = False) -> list[str]:
    """The images (or, `clips`, the clip sources) of a folder on this machine; refused on a Space."""
    if ON_SPACE:
        raise InvalidRequest("a folder path reads the server's disk, so it works only when you run the app on "
                             "your own machine: upload the files or a zip of them instead")
    path = Path(folder.strip()).expanduser()
    return as_clip_sources(training_inputs(path)) if clips else image_files(path)


def gather_training_images(uploads: list[str] | None, folder: str | None, staging: str | Path,
                           size: Size) -> TrainingData:
    """Every usable training image from `uploads` (images, .txt, .zip) and a local `folder`, checked for `size`.

    Images already in `staging` (e.g. example renders) are included. InvalidRequest with the reason when no
    image is usable or there are more than MAX_TRAINING_IMAGES.
    """
    staging = Path(staging)
    notes = _stage_uploads(list(uploads or []), staging)
    paths = sorted(str(p) for p in staging.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if folder and folder.strip():
        paths += _local_folder(folder)
    if not paths:
        raise InvalidRequest("no training images: upload some (or a zip of them), or use the example images")
    if len(paths) > MAX_TRAINING_IMAGES:
        raise InvalidRequest(f"{len(paths)} training images: at most {MAX_TRAINING_IMAGES} are accepted "
                             "(a few dozen good ones are enough for the upsamplers)")
    usable, reasons = usable_images(paths, size)
    if not usable:
        more = f" (and {len(reasons) - 1} more like it)" if len(reasons) > 1 else ""
        raise InvalidRequest(f"no usable training images: {reasons[0]}{more}")
    if reasons:
        notes.append(_summary(reasons, "image(s)"))
    return TrainingData(usable, notes)


def gather_training_clips(uploads: list[str] | None, folder: str | None, staging: str | Path, size: Size,
                          frames: int) -> TrainingData:
    """A video model's clips from `uploads` (videos, frames, .txt, .zip) and a local `folder`: each video is a
    clip, and so is each folder of frames (loose uploaded frames form one). Checked for `frames` x `size`."""
    staging = Path(staging)
    notes = _stage_uploads(list(uploads or []), staging)
    staged = sorted(str(p) for p in staging.rglob("*") if p.is_file()
                    and (p.suffix.lower() in VIDEO_TRAIN_SUFFIXES or p.suffix.lower() in IMAGE_SUFFIXES))
    sources = as_clip_sources(staged)
    if folder and folder.strip():
        sources += _local_folder(folder, clips=True)
    if not sources:
        raise InvalidRequest("no training clips: upload short videos (mp4, gif), frames or a zip of them, "
                             "or use the example clips")
    if len(sources) > MAX_TRAINING_CLIPS:
        raise InvalidRequest(f"{len(sources)} training clips: at most {MAX_TRAINING_CLIPS} are accepted")
    usable, reasons = usable_clips(sources, size, frames)
    if not usable:
        more = f" (and {len(reasons) - 1} more like it)" if len(reasons) > 1 else ""
        raise InvalidRequest(f"no usable training clips: {reasons[0]}{more}")
    if reasons:
        notes.append(_summary(reasons, "clip(s)"))
    return TrainingData(usable, notes, clips=True)
