"""A bounded folder for the files the app hands out (result PNGs, trained adapters, example renders).

A server that writes every result to the temp folder fills its disk: here each new file first prunes the
folder, removing entries older than the age cap, then the oldest entries until the total is under the size
cap. An "entry" is a top-level file or folder of a kind (an adapter is one folder). A writer that knows
the size of what it is about to write reserves room for it (`new_path(..., reserve=)`), and the app's
janitor (`start_janitor`) prunes every few seconds, so the cap holds between writes too.

gradio serves copies of results and keeps uploads in its own cache folder (one folder per file hash): the
same janitor bounds it by the same age and by its own size cap (GRADIO_CACHE), since gradio's
`delete_cache` only ages the files it tracks and has no size cap.

Caps: SELFCASCADE_OUTPUT_DIR (default <temp>/selfcascade-outputs), SELFCASCADE_OUTPUT_MAX_AGE (seconds; 24 h, 1 h
on a Space), SELFCASCADE_OUTPUT_MAX_MB (2048; 512 on a Space), SELFCASCADE_CACHE_MAX_MB (gradio's cache;
2048, 512 on a Space).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from selfcascade.files.hosting import cap


@dataclass(frozen=True)
class Entry:
    path: Path
    modified: float
    size: int


def _entry(path: Path) -> Entry | None:
    try:
        if path.is_dir():
            files = [item for item in path.rglob("*") if item.is_file()]
            size = sum(item.stat().st_size for item in files)
            modified = max([path.stat().st_mtime, *(item.stat().st_mtime for item in files)])
        else:
            stat = path.stat()
            size, modified = stat.st_size, stat.st_mtime
    except FileNotFoundError:  # removed meanwhile by another thread or process
        return None
    return Entry(path, modified, size)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class BoundedFolder:
    """Files and folders under `root/<kind>/` (depth 2; depth 1: directly under `root`), kept under `max_age`
    seconds and `max_bytes` in total."""

    def __init__(self, root: str | Path, max_age: float, max_bytes: int, depth: int = 2):
        self.root, self.max_age, self.max_bytes, self.depth = Path(root), max_age, max_bytes, depth
        self._lock = threading.Lock()

    def entries(self) -> list[Entry]:
        """Every entry of every kind, newest first."""
        if not self.root.is_dir():
            return []
        try:
            kinds = [self.root] if self.depth == 1 else [kind for kind in self.root.iterdir() if kind.is_dir()]
            found = [_entry(path) for kind in kinds for path in kind.iterdir()]
        except FileNotFoundError:  # a kind's folder removed meanwhile
            return []
        return sorted((entry for entry in found if entry is not None), key=lambda e: e.modified, reverse=True)

    def prune(self, now: float | None = None, reserve: int = 0) -> list[Path]:
        """Remove entries past the age cap, then the oldest until the total plus `reserve` bytes (what is
        about to be written) fits; returns what was removed."""
        now = time.time() if now is None else now
        removed, total, full = [], reserve, False
        with self._lock:
            for entry in self.entries():
                expired = now - entry.modified > self.max_age
                full = full or (not expired and total + entry.size > self.max_bytes)
                if expired or full:  # once the cap is reached, everything older goes too
                    _remove(entry.path)
                    removed.append(entry.path)
                else:
                    total += entry.size
        return removed

    def new_path(self, kind: str, prefix: str, suffix: str = "", reserve: int = 0) -> Path:
        """A fresh, unused path `root/kind/prefix-<time><suffix>` (its folder made), after pruning room for
        `reserve` bytes."""
        self.prune(reserve=reserve)
        folder = self.root / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}{suffix}"


OUTPUTS = BoundedFolder(
    # Not <temp>/selfcascade: `python -m selfcascade` run from the temp folder would import that folder.
    os.environ.get("SELFCASCADE_OUTPUT_DIR") or Path(tempfile.gettempdir()) / "selfcascade-outputs",
    max_age=cap("SELFCASCADE_OUTPUT_MAX_AGE", 24 * 3600, 3600),
    max_bytes=cap("SELFCASCADE_OUTPUT_MAX_MB", 2048, 512) * 2**20,
)
# gradio's cache (GRADIO_TEMP_DIR, else <temp>/gradio, as gradio.utils.get_upload_folder): one folder per file.
GRADIO_CACHE = BoundedFolder(
    os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio",
    max_age=OUTPUTS.max_age,
    max_bytes=cap("SELFCASCADE_CACHE_MAX_MB", 2048, 512) * 2**20,
    depth=1,
)
_janitor: threading.Thread | None = None


def janitor_interval(max_age: float) -> float:
    """Seconds between prunes: a quarter of the age cap, between 5 s and a minute."""
    return min(60.0, max(5.0, max_age / 4))


def start_janitor(*folders: BoundedFolder) -> threading.Thread:
    """Prune `folders` (default: OUTPUTS and GRADIO_CACHE) on a daemon thread, every `janitor_interval`
    seconds of the shortest age cap; started once per process."""
    global _janitor
    folders = folders or (OUTPUTS, GRADIO_CACHE)
    if _janitor is None or not _janitor.is_alive():
        interval = janitor_interval(min(folder.max_age for folder in folders))

        def run() -> None:
            while True:
                for folder in folders:
                    folder.prune()
                time.sleep(interval)

        _janitor = threading.Thread(target=run, name="selfcascade-janitor", daemon=True)
        _janitor.start()
    return _janitor
