"""What a user hands the Train tab (uploaded images, .txt captions, zips, a folder path) -> checked image paths.

Uploads arrive one per temporary folder, so an image and its caption would not sit side by side: they are
copied into one staging folder (zips unpacked there, see archive.py), where `dataset.sidecar_caption`
pairs them by name. Files that cannot teach the stage size are skipped with a note; when none is left, or
there are too many, the request is refused with one clear line.

Before anything is copied, the uploads are counted from their sizes and the zips' directories (nothing read
or unpacked): the images (or a video model's videos and frames) against MAX_TRAINING_IMAGES (or
MAX_TRAINING_CLIPS, and that many clips of MAX_CLIP_FRAMES frames), and the bytes staging would write against
MAX_TRAIN_UPLOAD_MB. A refused request leaves nothing on disk: the staging folder is removed.

Caps (environment variable: on your own machine / on a shared Space):
    SELFCASCADE_MAX_TRAIN_IMAGES      1000 / 200   images per training (all are held in memory)
    SELFCASCADE_MAX_TRAIN_CLIPS        100 / 30    a video model's clips per training
    SELFCASCADE_MAX_TRAIN_UPLOAD_MB   2048 / 256   MB the uploads come to, zips unpacked
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from selfcascade.cascade.stages import Size
from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import ON_SPACE, cap
from selfcascade.training.data.archive import planned_entries, unpack_training_zip
from selfcascade.training.data.clips import (
    MAX_CLIP_FRAMES,
    MOVIE_SUFFIXES,
    VIDEO_TRAIN_SUFFIXES,
    as_clip_sources,
    training_inputs,
    usable_clips,
)
from selfcascade.training.data.images import IMAGE_SUFFIXES, image_files, sidecar_caption, usable_images

MAX_TRAINING_IMAGES = cap("SELFCASCADE_MAX_TRAIN_IMAGES", 1000, 200)  # all are held in memory while training
MAX_TRAINING_CLIPS = cap("SELFCASCADE_MAX_TRAIN_CLIPS", 100, 30)  # x 128 frames each, held in memory
MAX_TRAIN_UPLOAD_MB = cap("SELFCASCADE_MAX_TRAIN_UPLOAD_MB", 2048, 256)  # all uploads together, zips unpacked
IMAGE_MEDIA = frozenset(IMAGE_SUFFIXES)  # what an image model's staging keeps (besides .txt captions)
CLIP_MEDIA = frozenset(IMAGE_SUFFIXES | VIDEO_TRAIN_SUFFIXES)  # a video model's: videos and frames


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


@contextmanager
def _nothing_left_when_refused(staging: Path) -> Iterator[None]:
    """Remove `staging` (this request's own fresh folder) when gathering fails: a refused request, a full disk
    or a stop leaves no half-copied data set behind."""
    try:
        yield
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@dataclass
class _Plan:
    """What staging the uploads would write, known from file sizes and zip directories alone."""

    copies: list[Path] = field(default_factory=list)  # loose files, copied into staging/uploads
    zips: list[tuple[int, Path]] = field(default_factory=list)  # (upload index, zip), unpacked beside
    media: list[str] = field(default_factory=list)  # names of the images and videos among them (zips' too)
    bytes: int = 0
    notes: list[str] = field(default_factory=list)


def _size_of(source: Path) -> int:
    try:
        return source.stat().st_size
    except OSError:
        raise InvalidRequest(f"{source.name}: the upload is not on the server any more (upload it again)") from None


def _plan(uploads: list[str], media: frozenset[str]) -> _Plan:
    """Sort the uploads (nothing is copied): `media` suffixes and .txt are copied, zips unpacked, the rest
    skipped with a note. InvalidRequest for a zip that would be refused."""
    plan, videos, others = _Plan(), [], []
    for index, source in enumerate(map(Path, uploads)):
        suffix = source.suffix.lower()
        if suffix == ".zip":
            entries = planned_entries(source)
            plan.zips.append((index, source))
            plan.media += [relative.name for _, relative in entries if relative.suffix.lower() != ".txt"]
            plan.bytes += sum(info.file_size for info, _ in entries)
        elif suffix in media or suffix == ".txt":
            _plan_copy(plan, source)
        else:  # a video given to an image model is not copied either
            (videos if suffix in MOVIE_SUFFIXES else others).append(source.name)
    if videos:
        plan.notes.append(f"skipped {', '.join(videos)}: a video teaches a video model, not an image model")
    if others:
        what = "an image, a video" if media == CLIP_MEDIA else "an image"
        plan.notes.append(f"skipped {', '.join(others)}: not {what}, a .txt caption or a .zip")
    return plan


def _plan_copy(plan: _Plan, source: Path) -> None:
    """One loose upload into the plan (once per name: uploads land in one folder)."""
    if any(copy.name == source.name for copy in plan.copies):
        plan.notes.append(f"{source.name} was uploaded twice: one copy is used")
        return
    plan.copies.append(source)
    plan.media += [source.name] if source.suffix.lower() != ".txt" else []
    plan.bytes += _size_of(source)


def _check_plan(plan: _Plan, staged: list[Path], clips: bool) -> None:
    """The caps, counted before any copy: the bytes, then the images (or videos and frames) with those already
    in `staging` (example renders)."""
    if plan.bytes > MAX_TRAIN_UPLOAD_MB * 2**20:
        raise InvalidRequest(f"the uploads come to {plan.bytes / 2**20:.1f} MB (zips unpacked): at most "
                             f"{MAX_TRAIN_UPLOAD_MB} MB are accepted for a training (fewer or smaller files)")
    names = plan.media + [path.name for path in staged]
    videos = sum(Path(name).suffix.lower() in MOVIE_SUFFIXES for name in names)
    if not clips and len(names) > MAX_TRAINING_IMAGES:
        raise InvalidRequest(f"{len(names)} training images: at most {MAX_TRAINING_IMAGES} are accepted "
                             "(a few dozen good ones are enough for the upsamplers)")
    if clips and videos > MAX_TRAINING_CLIPS:
        raise InvalidRequest(f"{videos} training clips: at most {MAX_TRAINING_CLIPS} are accepted")
    frames = len(names) - videos
    if clips and frames > MAX_TRAINING_CLIPS * MAX_CLIP_FRAMES:
        raise InvalidRequest(f"{frames} frames (images, GIF, WebP): at most {MAX_TRAINING_CLIPS * MAX_CLIP_FRAMES} "
                             f"are accepted ({MAX_TRAINING_CLIPS} clips of {MAX_CLIP_FRAMES} frames)")


def _stage_uploads(uploads: list[str], staging: Path, media: frozenset[str]) -> list[str]:
    """Count the uploads against the caps, then copy images and captions into `staging/uploads` and unpack
    zips beside; returns notes."""
    plan = _plan(uploads, media)
    staged = [p for p in staging.rglob("*") if p.suffix.lower() in media and p.is_file()] if staging.is_dir() else []
    _check_plan(plan, staged, media == CLIP_MEDIA)
    flat = staging / "uploads"
    flat.mkdir(parents=True, exist_ok=True)
    for source in plan.copies:
        shutil.copyfile(source, flat / source.name)
    for index, source in plan.zips:
        plan.notes += unpack_training_zip(source, staging / f"zip{index}-{source.stem}")
    return plan.notes


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

    `staging` is this request's own fresh folder; images already in it (e.g. example renders) are included.
    InvalidRequest with the reason when the uploads exceed a cap (counted before anything is copied), no image
    is usable or there are more than MAX_TRAINING_IMAGES; `staging` is then removed.
    """
    staging = Path(staging)
    with _nothing_left_when_refused(staging):
        return _gather_images(list(uploads or []), folder, staging, size)


def _gather_images(uploads: list[str], folder: str | None, staging: Path, size: Size) -> TrainingData:
    notes = _stage_uploads(uploads, staging, IMAGE_MEDIA)
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
    clip, and so is each folder of frames (loose uploaded frames form one). Checked for `frames` x `size`.

    `staging` is this request's own fresh folder (example clips in it are included); it is removed when the
    request is refused, as in `gather_training_images`.
    """
    staging = Path(staging)
    with _nothing_left_when_refused(staging):
        return _gather_clips(list(uploads or []), folder, staging, size, frames)


def _gather_clips(uploads: list[str], folder: str | None, staging: Path, size: Size, frames: int) -> TrainingData:
    notes = _stage_uploads(uploads, staging, CLIP_MEDIA)
    staged = sorted(str(p) for p in staging.rglob("*") if p.is_file() and p.suffix.lower() in CLIP_MEDIA)
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
