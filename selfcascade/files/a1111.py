"""A run's record as AUTOMATIC1111's generation parameters: the PNG `parameters` text that the A1111 WebUI,
Civitai, ComfyUI readers and exiftool users read, and back.

    a red circle on white
    Negative prompt: blurry
    Steps: 40, Sampler: DDIM, CFG scale: 4.0, Seed: 7, Size: 256x256, Model: embedded, Denoising strength: 0.5, ...

The prompt comes first (on several lines if it has several), then a `Negative prompt:` line when there is one,
then one line of `Key: value` pairs joined by ", ". A value that holds ",", ":" or a line break is written as a
JSON string ("..."), the way A1111 quotes it. The record's own keys follow A1111's (Steps, Sampler, CFG scale,
Seed, Size, Model, VAE, Denoising strength = the strength of the upper stages); the cascade's are named
"Self-Cascade ..." (KEYS below). LoRAs go in one `Lora` pair, `Lora: "name:scale, name2:scale"` (quoted, since
the list holds "," and ":"); the prompt line stays the prompt as typed, with no `<lora:...>` tags added.

`from_a1111` is the inverse for what a text has. From a text another program wrote (one without "Self-Cascade"
keys) it reads the prompt, negative prompt, steps, sampler (when it is one of ours), CFG scale, seed, size and
denoising strength; its Model and VAE name checkpoints of that program, not something this app can load, so
they are left out; keys it does not know are ignored. The full record stays JSON in the PNG's `selfcascade`
text chunk (selfcascade.files.images): this text is for other tools, and for PNGs that only carry it.
"""

from __future__ import annotations

import json
import re

from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import MAX_PROMPT_CHARS

# A text longer than two full prompts and their settings is not one (a 100 KB chunk is refused unread).
MAX_PARAMETERS_CHARS = 2 * MAX_PROMPT_CHARS + 8_000
# Our schedulers by the names A1111 shows (DPMSolverMultistep's default is 2M); the model's own: no Sampler.
SAMPLER_NAMES = {"ddpm": "DDPM", "ddim": "DDIM", "euler": "Euler", "euler-a": "Euler a", "dpm++": "DPM++ 2M"}
SCHEDULER_OF = {label: name for name, label in SAMPLER_NAMES.items()}
OURS = "Self-Cascade"  # the prefix of the cascade's keys; a text with one was written by this app
# (A1111 key, record key, kind), in the order they are written. Kinds: int, float, text, list (of words,
# written space-separated: what ran, for people), json (an object). Steps..VAE are A1111's own keys.
KEYS = (
    ("Steps", "steps", "int"),
    ("Sampler", "scheduler", "sampler"),
    ("CFG scale", "guidance", "float"),
    ("Seed", "seed", "int"),
    ("Size", ("width", "height"), "size"),
    ("Model", "model", "name"),
    ("VAE", "vae", "name"),
    ("Denoising strength", "strength", "float"),
    (f"{OURS} mode", "mode", "text"),
    (f"{OURS} stages", "stage_sizes", "list"),  # the sizes that ran: 64x64 128x128 256x256
    (f"{OURS} stage list", "stages", "text"),  # the request's own list, when it set one
    (f"{OURS} upper stage", "upper", "text"),  # the request's strategy, when it set one
    (f"{OURS} strategies", "upper_stage", "list"),  # what ran at each stage ("-" at the native size)
    (f"{OURS} upper CFG scale", "upper_guidance", "float"),
    (f"{OURS} pivot anchor", "anchor", "float"),
    (f"{OURS} pivot upsampling", "pivot_up", "text"),
    (f"{OURS} pivot consensus", "consensus", "int"),
    (f"{OURS} adapter", "adapter", "text"),
    (f"{OURS} dtype", "dtype", "text"),
    (f"{OURS} VAE tiling", "vae_tiling", "text"),
    (f"{OURS} offload", "offload", "text"),
    (f"{OURS} tuning", "tuning", "json"),
    ("Lora", "loras", "loras"),
)
DEFAULTS = {"dtype": "auto", "vae_tiling": "auto", "offload": "auto"}  # not written when unchanged
KEY = re.compile(r"\w[\w \-/]*")  # what A1111's parser takes as a key
INT = re.compile(r"[+-]?\d{1,100}")
FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
SIZE = re.compile(r"(\d{1,9})\s*x\s*(\d{1,9})")


def quote(value) -> str:
    """A value as A1111 writes it: as is, or as a JSON string when it holds ",", ":" or a line break."""
    text = value if isinstance(value, str) else str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n\r") else text


def _written(kind: str, value) -> str | None:
    if kind == "sampler":
        return SAMPLER_NAMES.get(value)
    if kind == "list":
        return " ".join(str(item) for item in value) if isinstance(value, (list, tuple)) else None
    if kind == "json":
        return json.dumps(value, sort_keys=True) if isinstance(value, dict) and value else None
    if kind == "loras":
        if not isinstance(value, (list, tuple)):
            return None
        return ", ".join(f"{lora.get('name')}:{lora.get('scale', 1.0)}" for lora in value if isinstance(lora, dict))
    return None if value is None or value == "" else str(value)


def to_a1111(record: dict) -> str:
    """The `parameters` text of a run's record (selfcascade.cascade.pipeline.run_metadata); keys the record
    lacks, None values and unchanged defaults (dtype, VAE tiling, offload "auto") are left out."""
    lines = [str(record.get("prompt") or "")]
    if record.get("negative_prompt"):
        lines.append(f"Negative prompt: {record['negative_prompt']}")
    pairs = []
    for label, key, kind in KEYS:
        if kind == "size":
            width, height = record.get("width"), record.get("height")
            text = f"{width}x{height}" if width is not None and height is not None else None
        elif DEFAULTS.get(key) == record.get(key):
            continue
        else:
            text = _written(kind, record.get(key))
        if text:
            pairs.append(f"{label}: {quote(text)}")
    return "\n".join(lines + [", ".join(pairs)]).strip()


def _split_pairs(line: str) -> dict[str, str]:
    """`Key: value` pairs of A1111's last line, split at the commas outside quoted values (one linear pass:
    a hostile text costs its length, not its square). Items that are not `Key: value` are skipped, as A1111
    does; a key given twice keeps its last value."""
    items, start, quoted, escaped = [], 0, False, False
    for index, char in enumerate(line):
        if quoted:
            escaped, quoted = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            quoted = True
        elif char == ",":
            items.append(line[start:index])
            start = index + 1
    items.append(line[start:])
    pairs = {}
    for item in items:
        key, colon, value = item.partition(":")
        key, value = key.strip(), value.strip()
        if colon and KEY.fullmatch(key):
            pairs[key] = _unquote(value)
    return pairs


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            text = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
        return text if isinstance(text, str) else value
    return value


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else f"{text[:24]}... ({len(text)} characters)")


def _read(label: str, kind: str, text: str):
    """One value of the kind its key has; InvalidRequest naming the key for anything else."""
    if kind == "int":
        if not INT.fullmatch(text):
            raise InvalidRequest(f"its parameters' {label} must be a whole number, not {_shown(text)}")
        return int(text)
    if kind == "float":
        if not FLOAT.fullmatch(text):
            raise InvalidRequest(f"its parameters' {label} must be a number, not {_shown(text)}")
        return float(text)
    if kind == "size":
        match = SIZE.fullmatch(text)
        if not match:
            raise InvalidRequest(f"its parameters' {label} must be WIDTHxHEIGHT, not {_shown(text)}")
        return int(match[1]), int(match[2])
    if kind == "list":
        return text.split()
    if kind == "json":
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            value = None
        if not isinstance(value, dict):
            raise InvalidRequest(f"its parameters' {label} must be a JSON object, not {_shown(text)}")
        return value
    if kind == "loras":
        loras = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, colon, scale = item.rpartition(":")
            if not colon or not name.strip() or not FLOAT.fullmatch(scale.strip()):
                raise InvalidRequest(f"its parameters' {label} must be name:scale, ..., not {_shown(text)}")
            loras.append({"name": name.strip(), "scale": float(scale)})
        return loras
    return text


def from_a1111(text: str) -> dict:
    """The record keys an A1111 `parameters` text holds (prompt, negative_prompt, steps, scheduler, guidance,
    seed, width, height, strength, and from this app's texts model, vae, mode, stages, upper, ...).

    InvalidRequest, one line, for a text that is not one: longer than MAX_PARAMETERS_CHARS, or a known key
    whose value is not of its kind (Steps: abc). Ranges are the request's to check
    (selfcascade.cascade.record.request_from_metadata)."""
    if not isinstance(text, str):
        raise InvalidRequest(f"its parameters are {type(text).__name__}, not text")
    if len(text) > MAX_PARAMETERS_CHARS:
        raise InvalidRequest(f"its parameters text is {len(text):,} characters long: at most "
                             f"{MAX_PARAMETERS_CHARS:,} are read")
    *lines, last = text.replace("\r\n", "\n").strip().split("\n")
    pairs = _split_pairs(last)
    if len(pairs) < 3:  # A1111's rule: a last line with fewer pairs is part of the prompt
        lines.append(last)
        pairs = {}
    prompt, negative, in_negative = [], [], False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    record: dict = {"prompt": "\n".join(prompt)}
    if in_negative:
        record["negative_prompt"] = "\n".join(negative)
    ours = any(key.startswith(OURS) for key in pairs)
    for label, key, kind in KEYS:
        if label not in pairs or (kind == "name" and not ours):
            continue
        value = _read(label, kind, pairs[label])
        if kind == "size":
            record["width"], record["height"] = value
        elif kind == "sampler":
            if value in SCHEDULER_OF:  # another program's sampler that we do not have: the model's own
                record[key] = SCHEDULER_OF[value]
        else:
            record[key] = value
    return record
