"""Unpacking a user's zip of training images without trusting it.

A zip names its own paths and sizes: an entry may point outside the folder (`../x`, `/etc/x`, `C:\\x`), be a
symlink, claim a small size and inflate to gigabytes, or hold thousands of files. Every name is checked
before anything is written (one bad name refuses the whole zip), only images and .txt captions are
written, each byte written counts against a cap, and macOS/hidden clutter is ignored.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .dataset import IMAGE_SUFFIXES
from .hosting import cap
from .stages import InvalidRequest

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


def unpack_training_zip(path: str | Path, folder: str | Path) -> list[str]:
    """Write the images and .txt captions of the zip at `path` under `folder`; returns notes on what was skipped.

    InvalidRequest when the zip is damaged, encrypted, too large, holds too many files or a path outside `folder`.
    """
    zip_name, folder = Path(path).name, Path(folder)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise InvalidRequest(f"{zip_name} is not a zip file that can be read (damaged, or another format)") from None
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        if len(entries) > MAX_ZIP_ENTRIES:
            raise InvalidRequest(f"{zip_name} holds {len(entries)} files: at most {MAX_ZIP_ENTRIES} are accepted")
        planned = [(info, _relative_path(zip_name, info.filename)) for info in entries]  # all names first
        if any(info.flag_bits & 0x1 for info in entries):
            raise InvalidRequest(f"{zip_name} is password-protected: zip the images without a password")
        skipped, budget = [], MAX_ZIP_MB * 2**20
        for info, relative in planned:
            if relative is None:
                continue
            if relative.suffix.lower() not in KEPT_SUFFIXES or _is_symlink(info):
                skipped.append(relative.name)
                continue
            try:
                budget -= _copy(archive, info, folder / relative, budget)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as error:
                raise InvalidRequest(f"{zip_name} is damaged: {relative} could not be unpacked ({error})") from None
    notes = []
    if skipped:
        shown = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        notes.append(f"{zip_name}: skipped {len(skipped)} file(s) that are not images or .txt captions ({shown})")
    return notes
