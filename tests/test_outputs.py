"""The bounded outputs folder: old entries and the oldest beyond the size cap go, the newest stay."""

import os
import time
from pathlib import Path

from selfcascade.files.outputs import BoundedFolder


def make(path: Path, size: int, age: float, now: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (now - age, now - age))
    return path


def test_entries_past_the_age_cap_are_removed(tmp_path):
    folder, now = BoundedFolder(tmp_path, max_age=3600, max_bytes=10**9), 1_000_000.0
    old = make(tmp_path / "images" / "old.png", 10, 7200, now)
    new = make(tmp_path / "images" / "new.png", 10, 60, now)
    assert folder.prune(now) == [old]
    assert new.exists() and not old.exists()


def test_the_oldest_go_until_the_total_fits(tmp_path):
    folder, now = BoundedFolder(tmp_path, max_age=10**6, max_bytes=250), 1_000_000.0
    files = [make(tmp_path / "images" / f"{age}.png", 100, age, now) for age in (10, 20, 30, 40)]
    adapter = tmp_path / "adapters" / "adapter-1"  # a folder counts as one entry, its files summed
    make(adapter / "adapter.safetensors", 40, 5, now)
    make(adapter / "config.json", 10, 5, now)
    removed = folder.prune(now)
    assert adapter.exists() and files[0].exists() and files[1].exists()  # 50 + 100 + 100 = 250 bytes
    assert set(removed) == {files[2], files[3]}


def test_new_path_prunes_first_and_never_repeats(tmp_path):
    folder = BoundedFolder(tmp_path, max_age=0.0, max_bytes=10**9)
    stale = make(tmp_path / "images" / "stale.png", 10, 5, time.time())
    paths = {folder.new_path("images", "selfcascade", ".png") for _ in range(50)}
    assert len(paths) == 50 and not stale.exists()
    assert all(p.parent == tmp_path / "images" and p.name.startswith("selfcascade-") for p in paths)
