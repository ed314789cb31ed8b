"""Unpacking a user's zip of training images without trusting it.

A zip names its own paths and sizes: an entry may point outside the folder (`../x`, `/etc/x`, `C:\\x`), be a
symlink, claim a small size and inflate to gigabytes, or hold thousands of files. Every name, and the sizes the
entries declare, are checked before anything is written (one bad name refuses the whole zip), only images and
.txt captions are written, each byte written counts against a cap, and macOS/hidden clutter is ignored. A
refused zip leaves nothing behind.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import cap
from selfcascade.training.data.images import IMAGE_SUFFIXES

MAX_ZIP_ENTRIES = cap("SELFCASCADE_MAX_ZIP_ENTRIES", 5000, 1000)  # files in one zip
MAX_ZIP_MB = cap("SELFCASCADE_MAX_ZIP_MB", 1024, 256)  # bytes written when unpacking one zip
KEPT_SUFFIXES = IMAGE_SUFFIXES | {".txt"}
CHUNK = 1 << 20


def _relative_path(zip_name: str, entry: str) -> PurePosixPath | None:
    """The entry's path inside the target folder; None for clutter; InvalidRequest for a path that escapes."""
    name = entry.replace("\\", "/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise InvalidRequest(f"{zip_name} has a file outside its own folder ({entry!r}): refused, nothing "
                             "was unpacked")
    if not parts or parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts):
        return None  # Finder's resource forks and hidden files: not the user's images
    return PurePosixPath(*parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Write one entry, counting real bytes (a header's size can lie); returns the bytes written."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(info) as source, open(target, "wb") as sink:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > budget:
                raise InvalidRequest(f"{Path(archive.filename).name} unpacks to more than {MAX_ZIP_MB} MB: "
                                     "refused (a smaller zip, or fewer or smaller images)")
            sink.write(chunk)
    return written


def planned_entries(path: str | Path) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The entries of the zip at `path` that unpacking would write (images and .txt captions, no symlinks), with
    their paths inside the target folder; nothing is written. Their header sizes bound what is read: Python's
    zipfile never returns more than an entry's declared size (and checks its CRC at the end).

    InvalidRequest when the zip is damaged, encrypted, holds too many files, a path outside its folder, or
    declares more than MAX_ZIP_MB.
    """
    with _opened(path) as archive:
        return [(info, relative) for info, relative, kept in _plan(archive, Path(path).name) if kept]


def _opened(path: str | Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise InvalidRequest(f"{Path(path).name} is not a zip file that can be read (damaged, or another "
                             "format)") from None


def _plan(archive: zipfile.ZipFile, zip_name: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath, bool]]:
    """Every non-clutter entry with its relative path and whether it is kept; every refusal happens here, before
    anything is written."""
    entries = [info for info in archive.infolist() if not info.is_dir()]
    if len(entries) > MAX_ZIP_ENTRIES:
        raise InvalidRequest(f"{zip_name} holds {len(entries)} files: at most {MAX_ZIP_ENTRIES} are accepted")
    named = [(info, _relative_path(zip_name, info.filename)) for info in entries]  # all names first
    if any(info.flag_bits & 0x1 for info in entries):
        raise InvalidRequest(f"{zip_name} is password-protected: zip the images without a password")
    plan = [(info, relative, relative.suffix.lower() in KEPT_SUFFIXES and not _is_symlink(info))
            for info, relative in named if relative is not None]
    declared = sum(info.file_size for info, _, kept in plan if kept)
    if declared > MAX_ZIP_MB * 2**20:
        raise InvalidRequest(f"{zip_name} unpacks to more than {MAX_ZIP_MB} MB ({declared / 2**20:.0f} MB): "
                             "refused (a smaller zip, or fewer or smaller images)")
    return plan


def _unpack(archive: zipfile.ZipFile, zip_name: str, folder: Path) -> list[str]:
    """Write the kept entries under `folder`; returns the names of the skipped ones."""
    skipped, budget = [], MAX_ZIP_MB * 2**20
    for info, relative, kept in _plan(archive, zip_name):
        if not kept:
            skipped.append(relative.name)
            continue
        try:
            budget -= _copy(archive, info, folder / relative, budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as error:
            raise InvalidRequest(f"{zip_name} is damaged: {relative} could not be unpacked ({error})") from None
    return skipped


def _remove_unpacked(folder: Path, existed: bool, before: set[Path]) -> None:
    """Undo a refused unpacking: the folder when unpacking made it, else the files it added (a partial one too)."""
    if not existed:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for path in sorted(set(folder.rglob("*")) - before, reverse=True):  # deepest first: files, then their folders
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def unpack_training_zip(path: str | Path, folder: str | Path) -> list[str]:
    """Write the images and .txt captions of the zip at `path` under `folder`; returns notes on what was skipped.

    InvalidRequest when the zip is damaged, encrypted, too large, holds too many files or a path outside `folder`;
    a refusal leaves nothing behind: what was unpacked, the partly written file included, is removed.
    """
    zip_name, folder = Path(path).name, Path(folder)
    existed = folder.is_dir()
    before = set(folder.rglob("*")) if existed else set()
    with _opened(path) as archive:
        try:
            skipped = _unpack(archive, zip_name, folder)
        except BaseException:  # a refusal, a full disk, a stop: no partial data set stays
            _remove_unpacked(folder, existed, before)
            raise
    notes = []
    if skipped:
        shown = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        notes.append(f"{zip_name}: skipped {len(skipped)} file(s) that are not images or .txt captions ({shown})")
    return notes
