"""LoRAs on a loaded model: diffusers' own `load_lora_weights` and `set_adapters` (peft), checked.

A LoRA changes the frozen model's weights, so it reaches every stage of the cascade with no help: the UNet's
peft layers carry the scale given to `set_adapters`. LoRAs a caller loaded on their own pipeline before
handing it over (`SelfCascadePipeline.from_pipe`) are theirs and are left alone; the ones a request names
are loaded under names of our own and replaced when the next request names others.
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from diffusers.utils import USE_PEFT_BACKEND
from diffusers.utils import logging as diffusers_logging
from diffusers.utils.peft_utils import scale_lora_layers, unscale_lora_layers
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import MAX_NAME_CHARS
from selfcascade.models.availability import explain
from selfcascade.models.names import is_hub_id

MAX_LORAS = 8
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # what diffusers' trainers write, and look for first
_OUR_PREFIX = "selfcascade_lora_"
_SCALE = re.compile(r"^(?P<source>.+):(?P<scale>[-+]?(?:\d+\.?\d*|\.\d+))$")


@dataclass(frozen=True)
class Lora:
    """A LoRA as a user names it: a folder, a .safetensors file or a hub id, and its scale."""

    source: str
    scale: float = 1.0

    def text(self) -> str:
        """'source:scale' as parse_lora reads it back (the scale never in exponent form: 1e-05 would not parse)."""
        scale = f"{self.scale:g}"
        if "e" in scale:
            scale = f"{self.scale:.8f}".rstrip("0").rstrip(".")
        return f"{self.source}:{scale}"


def parse_lora(text) -> Lora:
    """'PATH_OR_ID[:SCALE]' -> Lora (InvalidRequest with one line for anything else). The scale is the part after
    the last colon when it is a number, so 'C:\\loras\\x' and hub ids stay whole."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest(f"a LoRA is a path or hub id with an optional :SCALE, not {str(text)[:40]!r}")
    text = text.strip()
    if len(text) > MAX_NAME_CHARS + 12:
        raise InvalidRequest(f"the LoRA is {len(text)} characters long: at most {MAX_NAME_CHARS} are accepted")
    match = _SCALE.match(text)
    if match is None:
        return Lora(text)
    scale = float(match["scale"])
    if not math.isfinite(scale) or not -4 <= scale <= 4:
        raise InvalidRequest(f"LoRA {match['source']}: its scale must be between -4 and 4, not {match['scale']}")
    return Lora(match["source"], scale)


def parse_loras(values) -> tuple[Lora, ...]:
    """A request's LoRAs (texts or Lora objects; None: none), at most MAX_LORAS."""
    if values is None:
        return ()
    if isinstance(values, (str, Lora)):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise InvalidRequest(f"loras must be a list of 'PATH_OR_ID[:SCALE]', not {type(values).__name__}")
    if len(values) > MAX_LORAS:
        raise InvalidRequest(f"at most {MAX_LORAS} LoRAs at once, not {len(values)}")
    return tuple(value if isinstance(value, Lora) else parse_lora(value) for value in values)


def _location(source: str) -> tuple[str, dict]:
    """Where diffusers reads a LoRA from: a folder as is, a file by its folder and weight name, a hub id by the
    file it names in the hub cache (_hub_location). Text shaped like a hub id follows the loader's rule
    (names.is_hub_id): on a Space it always means the hub, never a relative folder of that name."""
    if is_hub_id(source):
        return _hub_location(source)
    path = Path(source).expanduser()
    if path.is_file():
        return str(path.parent), {"weight_name": path.name}
    if path.is_dir():
        return str(path), {}
    raise InvalidRequest(f"LoRA {path.name or source}: no such file or folder (nor a hub id, owner/name)")


def _hub_location(repo_id: str) -> tuple[str, dict]:
    """A hub LoRA's weights fetched by our own hub calls (the cache first): LORA_WEIGHTS, diffusers' trainers'
    name, else the repository's one .safetensors file. diffusers then reads an absolute file in the hub cache:
    given the id itself, it would read a relative folder of that name first. One line for every failure."""
    try:
        try:
            path = hf_hub_download(repo_id, LORA_WEIGHTS)
        except EntryNotFoundError:
            files = [name for name in HfApi().list_repo_files(repo_id) if name.endswith(".safetensors")]
            if len(files) != 1:
                raise InvalidRequest(f"LoRA {repo_id}: the repository has no {LORA_WEIGHTS} and "
                                     f"{len(files)} other .safetensors files; one is needed") from None
            path = hf_hub_download(repo_id, files[0])
    except InvalidRequest:
        raise
    except Exception as error:  # noqa: BLE001 - every hub failure becomes one line
        raise InvalidRequest(f"LoRA {explain(error, repo_id)}") from None
    return str(Path(path).parent), {"weight_name": Path(path).name}


def _our_adapters(pipeline) -> list[str]:
    adapters = pipeline.get_list_adapters() if hasattr(pipeline, "get_list_adapters") else {}
    return sorted({name for names in adapters.values() for name in names if name.startswith(_OUR_PREFIX)})


def apply_loras(model, loras: tuple[Lora, ...]) -> None:
    """Make `loras` (with their scales) the ones this project loaded on `model`'s pipeline: none when empty.

    Raises InvalidRequest with one line for a LoRA that cannot be read (missing, damaged, not safetensors) or
    that does not fit the model (another family's layers or shapes); the model is then left without it."""
    if getattr(model, "loras", ()) == tuple(loras):
        return
    pipeline = model.pipeline
    stale = _our_adapters(pipeline)
    if stale:
        pipeline.delete_adapters(stale)
    model.loras = ()
    if not loras:
        return
    if not hasattr(pipeline, "load_lora_weights"):
        raise InvalidRequest(f"{type(pipeline).__name__} takes no LoRA")
    names = []
    for index, lora in enumerate(loras):
        name = f"{_OUR_PREFIX}{index}"
        _load_one(pipeline, lora, name)
        names.append(name)
    user_adapters = sorted(set(pipeline.get_active_adapters()) - set(names) - set(stale))
    # set_adapters replaces the active set: keep the caller's own LoRAs active at their weight 1 beside ours.
    pipeline.set_adapters(user_adapters + names, adapter_weights=[1.0] * len(user_adapters)
                          + [lora.scale for lora in loras])
    model.loras = tuple(loras)


def _load_one(pipeline, lora: Lora, name: str) -> None:
    location, options = _location(lora.source)
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # its multi-line error log: ours is one line
    try:
        pipeline.load_lora_weights(location, adapter_name=name, use_safetensors=True, **options)
    except Exception as error:  # noqa: BLE001 - diffusers and peft raise many kinds; each becomes one line
        _forget(pipeline, name)
        raise InvalidRequest(f"LoRA {Path(lora.source).name or lora.source} could not be loaded on this model: "
                             f"{_reason(error)}") from None
    finally:
        diffusers_logging.set_verbosity(verbosity)
    if name not in {n for names in pipeline.get_list_adapters().values() for n in names}:
        raise InvalidRequest(f"LoRA {Path(lora.source).name}: none of its layers belong to this model "
                             "(a LoRA for another family?)")


def _forget(pipeline, name: str) -> None:
    try:
        if name in {n for names in pipeline.get_list_adapters().values() for n in names}:
            pipeline.delete_adapters([name])
    except Exception:  # noqa: BLE001 - a half-loaded adapter may not delete cleanly; the error above matters
        pass


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    if "size mismatch" in text or "shape" in text.lower():
        return "its layers have other shapes (a LoRA for another family?)"
    if "no file named" in text.lower() or "not found" in text.lower() or isinstance(error, FileNotFoundError):
        return "no LoRA weights there (a folder or .safetensors file with LoRA weights)"
    return text[:160] or type(error).__name__


def record_of(loras: tuple[Lora, ...], public_name) -> list[dict]:
    """The LoRAs as a record shows them: public names (never a server path) and scales."""
    return [{"name": public_name(lora.source), "scale": lora.scale} for lora in loras]


@contextmanager
def lora_scale(model, scale: float):
    """Every LoRA of `model` (the caller's and ours) at `scale` times its weight for the block's UNet and
    text-encoder calls: diffusers' `cross_attention_kwargs={"scale": s}`, for every stage of the cascade."""
    if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale)):
        raise InvalidRequest(f"the LoRA scale must be a finite number, not {scale!r}")
    parts = [part for part in (model.unet, getattr(model.pipeline, "text_encoder", None),
                               getattr(model.pipeline, "text_encoder_2", None)) if part is not None]
    if scale == 1.0 or not USE_PEFT_BACKEND:
        yield
        return
    for part in parts:
        scale_lora_layers(part, scale)
    try:
        yield
    finally:
        for part in parts:
            unscale_lora_layers(part, scale)
