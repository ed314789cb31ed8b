"""Reading a PNG's record back into the request that made it (the app's "Reuse the settings of a PNG"): this
app's JSON record, or the keys of an A1111 `parameters` text (selfcascade.files.a1111), as
selfcascade.files.images.read_png_metadata gives them."""

from __future__ import annotations

from dataclasses import fields

from selfcascade.cascade.request import GenerationRequest
from selfcascade.errors import InvalidRequest
from selfcascade.models.names import adapter_from_record, model_from_record


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
    request = GenerationRequest(**values)
    request.check()
    return request
