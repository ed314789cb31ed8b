"""Reading a PNG's record back into the request that made it (the app's "Reuse the settings of a PNG"): this
app's JSON record, or the keys of an A1111 `parameters` text (selfcascade.files.a1111), as
selfcascade.files.images.read_png_metadata gives them."""

from __future__ import annotations

from dataclasses import fields

from selfcascade.cascade.request import GenerationRequest, is_number
from selfcascade.errors import InvalidRequest
from selfcascade.models.lora import MAX_LORAS, Lora
from selfcascade.models.names import adapter_from_record, model_from_record


def lora_texts(recorded) -> list[str]:
    """A record's `loras` (`[{"name": ..., "scale": ...}]`, as a run's record and an A1111 `Lora:` key hold them)
    as the request's texts, "name:scale"; texts pass as they are. InvalidRequest, one line, for anything else."""
    if recorded is None:
        return []
    if not isinstance(recorded, list):
        raise InvalidRequest(f"the recorded loras must be a list, not {type(recorded).__name__}")
    if len(recorded) > MAX_LORAS:
        raise InvalidRequest(f"the record names {len(recorded)} LoRAs: at most {MAX_LORAS} are used at once")
    texts = []
    for item in recorded:
        if isinstance(item, str):
            texts.append(item)
            continue
        name = item.get("name") if isinstance(item, dict) else None
        scale = item.get("scale", 1.0) if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip() or not is_number(scale):
            raise InvalidRequest('each recorded LoRA must be {"name": text, "scale": number}, not '
                                 f"{str(item)[:40]!r}")
        texts.append(Lora(name.strip(), float(scale)).text())
    return texts


def request_from_metadata(metadata: dict) -> GenerationRequest:
    """The request that made a PNG (its `selfcascade` metadata, or what its A1111 text holds), checked like any
    request, ready to run again; unknown keys ignored. A record is a visitor's file: any JSON type or value in
    it gives InvalidRequest."""
    names = {field.name for field in fields(GenerationRequest)} - {"extra", "max_side"}
    values = {key: value for key, value in metadata.items() if key in names}
    if "prompt" not in values or "width" not in values or "height" not in values:
        raise InvalidRequest("this PNG carries no Self-Cascade or A1111 settings (a prompt and a size)")
    for key in ("model", "adapter"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise InvalidRequest(f"the recorded {key} must be text, not {type(values[key]).__name__}")
    values["model"] = model_from_record(values.get("model"))
    values["adapter"] = adapter_from_record(values.get("adapter"))
    values["loras"] = lora_texts(values.get("loras"))
    request = GenerationRequest(**values)
    request.check()
    return request
