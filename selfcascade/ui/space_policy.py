"""What the model, VAE and adapter fields accept from visitors on a Space: names, never a server path.

Locally the app is its owner's, and a folder or file on this machine is what they mean: it loads as before. On a
Space (hosting.ON_SPACE) every visitor types into the same server, so a field that took a path would read its
disk for them, and the answers would tell them what is there ("/root: not a diffusers model folder" against
"/nonexistent: no such folder"; the shipped model's own path loading). There the fields take names only,
judged by their shape without touching the disk:

- model: a hub id (owner/name) or a shipped model's name ("embedded", "shapes-video", ...);
- VAE: a hub id, or nothing (the model's own);
- LoRAs (the Generate tab's LoRA field, each entry): a hub id, with its optional :SCALE;
- adapter: a shipped adapter's name or one of the visitor's own (selfcascade.ui.visitor_files resolves those,
  since only it knows whose they are, and refuses the rest with ADAPTER_REFUSAL).

Anything else gets one message per field, the same whether the path exists or not.

Where it is checked: at the start of every UI handler that loads what a visitor typed (visitor_files.
checked_sources; the LoRA field in selfcascade.ui.handlers.lora_field), before any file is opened. The library
and the CLI trust their caller: the CLI is the machine owner's tool, and keeps loading local folders even with
SPACE_ID set. The loader (and the LoRA loader) does take one rule from here on a Space (models.names.is_hub_id):
text shaped like a hub id is looked up on the hub, never as a relative folder of the same name, so
"selfcascade/assets" (a folder in the checkout) answers like any other unknown repository.
"""

from __future__ import annotations

from selfcascade.errors import InvalidRequest
from selfcascade.files import hosting
from selfcascade.models.loader import is_embedded, is_embedded_video
from selfcascade.models.names import looks_like_hub_id

REFUSALS = {
    "model": "on this Space the model field takes a hub id (owner/name) or a listed model such as 'embedded'; "
             "server paths are not read",
    "vae": "on this Space the VAE field takes a hub id (owner/name) or nothing (the model's own); server paths "
           "are not read",
    "lora": "on this Space the LoRA field takes hub ids (owner/name, each with an optional :SCALE) or nothing; "
            "server paths are not read",
}
ADAPTER_REFUSAL = ("on this Space the adapter field takes a listed adapter, or one you uploaded or trained in this "
                   "session; server paths are not read")


def on_space() -> bool:
    """Read at each call (not copied at import), so that tests can switch it for one process."""
    return hosting.ON_SPACE


def check_source(field: str, text: str | None) -> None:
    """Refuse a model, VAE or LoRA (`field` "model", "vae" or "lora") that names anything but a hub id or (the
    model) a shipped model, with the field's one message (REFUSALS), when the app runs on a Space; locally,
    accept everything. Empty means the default (the embedded model, the model's own VAE, no LoRA). Reads no
    file."""
    if not on_space():
        return
    value = (text or "").strip()
    if not value or looks_like_hub_id(value):
        return
    if field == "model" and (is_embedded(value) or is_embedded_video(value)):
        return
    raise InvalidRequest(REFUSALS[field])
