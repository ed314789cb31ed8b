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
from .hosting import ON_SPACE, cap
from .stages import InvalidRequest, Size

MAX_TRAINING_IMAGES = cap("SELFCASCADE_MAX_TRAIN_IMAGES", 1000, 200)  # all are held in memory while training


@dataclass
class TrainingData:
    images: list[str]
    notes: list[str] = field(default_factory=list)  # one line each: what was skipped, and why

    def describe(self) -> str:
        """'12 images, 9 with a caption of their own'."""
        own = sum(sidecar_caption(path) is not None for path in self.images)
        return f"{len(self.images)} image(s), {own} with a caption of their own (.txt)"


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
        elif suffix in IMAGE_SUFFIXES or suffix == ".txt":
            target = flat / source.name
            if target.exists():
                notes.append(f"{source.name} was uploaded twice: one copy is used")
            else:
                shutil.copyfile(source, target)
        else:
            skipped.append(source.name)
    if skipped:
        notes.append(f"skipped {', '.join(skipped)}: not an image, a .txt caption or a .zip")
    return notes


def _local_folder(folder: str) -> list[str]:
    if ON_SPACE:
        raise InvalidRequest("a folder path reads the server's disk, so it works only when you run the app on "
                             "your own machine: upload the images or a zip of them instead")
    return image_files(Path(folder.strip()).expanduser())


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
