"""Whose adapters are whose: each visitor's uploaded and trained adapters, and the names the page shows for them.

On a Space (hosting.ON_SPACE) an adapter belongs to the gradio session that uploaded or trained it
(request.session_hash, sessions.session_key): it lives in that session's folder under the bounded outputs
folder, `<OUTPUTS>/sessions/<sha256 of the key>/<name>/` (the key itself, which addresses the session's events,
is never written down), and no other session can list or use it. The folder goes when its session ends
(`forget_session`, from Blocks.unload) or, like every output, when it ages out (selfcascade.files.outputs). Locally
the app has one user: every tab is the same owner ("local"), and a closed tab keeps the adapters.

The page never holds a server path: adapter lists are (label, token) pairs, the token "shapes-adapter" or
"shapes-video-adapter" for the shipped adapters and the entry's folder name for a session's own;
`resolve_adapter` turns a token back into a path for the handlers, and only for those. Locally a typed path
still works (the owner's own disk); on a Space anything else gets space_policy.ADAPTER_REFUSAL.

An own adapter is a folder: a trained one as training writes it (config.json, weights, adapter.safetensors,
README.md), an uploaded one holding the checked upload as adapter.safetensors. State lives on disk, not in this
process, so a training run in a ZeroGPU worker process and the server see the same lists.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from pathlib import Path

from selfcascade.adapters.files import WEIGHTS, read_adapter_config
from selfcascade.cascade.request import check_text
from selfcascade.errors import InvalidRequest
from selfcascade.files import hosting
from selfcascade.files.hosting import MAX_NAME_CHARS
from selfcascade.files.outputs import OUTPUTS
from selfcascade.models.names import SHIPPED_ADAPTERS
from selfcascade.ui.sessions import session_key
from selfcascade.ui.space_policy import ADAPTER_REFUSAL, check_source

SESSIONS = "sessions"  # the kind of entry in OUTPUTS: one folder per session, pruned as one entry
SINGLE_FILE = "adapter.safetensors"  # the weights with their config, in every own adapter's folder
SHIPPED_LABELS = {"shapes-adapter": "shapes-adapter (shipped, for the embedded model)",
                  "shapes-video-adapter": "shapes-video-adapter (shipped, for the embedded shapes-video model)"}
VIDEO_SHIPPED, IMAGE_SHIPPED = ["shapes-video-adapter"], ["shapes-adapter"]


def owner(request) -> str:
    """Whose files these are: the gradio session on a Space; locally, the one user."""
    return session_key(request) if hosting.ON_SPACE else "local"


def session_folder(request) -> Path:
    """The owner's folder (it may not exist yet), named by a hash of the owner's key, not the key."""
    digest = hashlib.sha256(owner(request).encode()).hexdigest()[:32]
    return OUTPUTS.root / SESSIONS / digest


def own_adapters(request) -> list[Path]:
    """The owner's adapter folders, newest first (the bounded outputs folder may have pruned older ones)."""
    folder = session_folder(request)
    if not folder.is_dir():
        return []
    entries = [path for path in folder.iterdir()
               if path.is_dir() and not path.is_symlink() and not path.name.startswith(".")]
    return sorted(entries, key=_modified, reverse=True)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # pruned meanwhile
        return 0.0


def load_path(entry: Path) -> Path:
    """What loads an own adapter: a trained folder as a folder, an uploaded one as its single file."""
    return entry if (entry / "config.json").is_file() and (entry / WEIGHTS).is_file() else entry / SINGLE_FILE


def adapter_choices(request=None, video: bool | None = False) -> list[tuple[str, str]]:
    """(label, token) pairs: the owner's adapters, newest first, then the shipped ones (`video`: the shipped one
    for the embedded video model; False: for the image model; None: both). No value is a path. The page is built
    with no request: the owner "local" then, whose folder is empty on a Space (sessions own their files)."""
    own = [(entry.name, entry.name) for entry in own_adapters(request)]
    shipped = {False: IMAGE_SHIPPED, True: VIDEO_SHIPPED, None: IMAGE_SHIPPED + VIDEO_SHIPPED}[video]
    return own + [(SHIPPED_LABELS[name], name) for name in shipped if SHIPPED_ADAPTERS[name].is_dir()]


def resolve_adapter(text: str | None, request) -> str | None:
    """The server path of the adapter a field names (None when it names none).

    Tokens: a shipped adapter's name, or one of this owner's adapters by its folder name (also as
    "<folder>/adapter.safetensors", as a PNG records it). Other text is a path on this machine locally, and
    refused on a Space with one message, whatever is or is not at that path."""
    check_text(text, "adapter", MAX_NAME_CHARS, optional=True)
    value = (text or "").strip()
    if not value:
        return None
    if value in SHIPPED_ADAPTERS:
        return str(SHIPPED_ADAPTERS[value])
    folder_name = value[:-len(SINGLE_FILE) - 1] if value.endswith("/" + SINGLE_FILE) else value
    for entry in own_adapters(request):  # compared by name: the text is never joined to a path
        if entry.name == folder_name:
            return str(load_path(entry))
    if hosting.ON_SPACE:
        raise InvalidRequest(ADAPTER_REFUSAL)
    return value


def checked_sources(request, model: str | None, vae: str | None = None, adapter: str | None = None,
                    tuned: bool = True) -> str | None:
    """What a handler does first with a visitor's model, VAE and adapter fields: the model and VAE pass
    space_policy.check_source, and the adapter's path (None unless `tuned`: other modes ignore the field, so a
    stale choice there does not block them) is returned. InvalidRequest, one line, otherwise."""
    check_text(model, "model", MAX_NAME_CHARS, optional=True)
    check_text(vae, "VAE", MAX_NAME_CHARS, optional=True)
    check_source("model", model)
    check_source("vae", vae)
    return resolve_adapter(adapter, request) if tuned else None


def new_adapter_folder(request) -> Path:
    """A fresh folder path for an adapter this owner trains (not made yet: training writes it)."""
    OUTPUTS.prune()
    folder = session_folder(request)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"adapter-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}"


def adopt_adapter(path: str | Path, request) -> str:
    """Make an adapter file a visitor handed in (an upload, or the trained adapter's download sent back) one of
    the owner's: checked as a readable adapter first (selfcascade.adapters.checks, bounded), then the token of
    an own adapter with the same bytes, or of a new folder holding a copy. InvalidRequest, one line, otherwise."""
    source = Path(path)
    if not source.is_file():
        raise InvalidRequest(f"{source.name}: not an adapter file")
    read_adapter_config(source)
    for entry in own_adapters(request):
        if _same_bytes(source, entry / SINGLE_FILE):
            return entry.name
    OUTPUTS.prune()
    folder = session_folder(request)
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / _free_name(source.stem, folder)
    entry.mkdir()
    shutil.copyfile(source, entry / SINGLE_FILE)
    return entry.name


def _same_bytes(one: Path, other: Path) -> bool:
    try:
        if one.stat().st_size != other.stat().st_size:
            return False
        return _digest(one) == _digest(other)
    except OSError:  # not there (yet, or any more)
        return False


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _free_name(stem: str, folder: Path) -> str:
    """A folder name from an upload's name: safe characters only, not a shipped adapter's, not taken."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")[:64] or "adapter"
    name, number = base, 1
    while name in SHIPPED_ADAPTERS or (folder / name).exists():
        number += 1
        name = f"{base}-{number}"
    return name


def forget_session(request) -> None:
    """The session ended (Blocks.unload): on a Space its files go now, not at the age cap. Locally nothing goes:
    the one user's adapters outlive a closed tab."""
    if hosting.ON_SPACE:
        shutil.rmtree(session_folder(request), ignore_errors=True)
