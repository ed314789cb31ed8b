"""Cascade settings a model folder carries for itself: `selfcascade.json` beside its `model_index.json`.

Some settings were measured on a particular model, not on its family: the embedded shapes model anchors a
band of 0.7 latent pixels, where hub models need 2.0 (selfcascade.diffusion.anchor). Tying such a setting to the
shipped folder's path gave every retrained copy (`train_default --out DIR`, then `--model DIR`) the hub band
without a word, and measured the copy wrong (docs/experiments.md, "Where the refined model's lumps come
from"). The folder says it instead, and the trainers write it into every model they save.

    {"pivot_anchor_sigma": 0.7, "pivot_consensus": 4}
"""

from __future__ import annotations

import json
from pathlib import Path

SETTINGS_FILE = "selfcascade.json"
KNOWN = {"pivot_anchor_sigma": float, "pivot_consensus": int}  # key -> type; a folder may carry only these


class BadFolderSettings(ValueError):
    """The folder's selfcascade.json cannot be used."""


def read_folder_settings(folder: str | Path) -> dict:
    """The settings in `folder`/selfcascade.json ({} when the file is absent or `folder` is a hub id)."""
    path = Path(folder).expanduser() / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadFolderSettings(f"{path} is not readable JSON ({error})") from None
    if not isinstance(settings, dict):
        raise BadFolderSettings(f"{path} must hold a JSON object, like {{\"pivot_anchor_sigma\": 0.7}}")
    unknown = sorted(set(settings) - set(KNOWN))
    if unknown:
        raise BadFolderSettings(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(KNOWN)}")
    for key, value in settings.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise BadFolderSettings(f"{path}: {key} must be a positive number, not {value!r}")
    return {key: KNOWN[key](value) for key, value in settings.items()}


def write_folder_settings(folder: str | Path, **settings) -> None:
    """Write `settings` (keys from KNOWN) as `folder`/selfcascade.json."""
    unknown = sorted(set(settings) - set(KNOWN))
    if unknown:
        raise ValueError(f"unknown folder setting(s): {', '.join(unknown)}")
    (Path(folder) / SETTINGS_FILE).write_text(json.dumps(settings, indent=1) + "\n")
