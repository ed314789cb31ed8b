"""One request builder from named fields, for every surface: the app's forms, the command line, the API.

A form sends what a visitor typed (text, floats from number fields, "" for an empty box, any JSON value from a
hostile client); the command line sends argparse's types. `request_from_fields` turns either into a checked
GenerationRequest or VideoRequest, by field name: nothing is matched by position.
"""

from __future__ import annotations

import dataclasses
import math

from selfcascade.cascade.request import GenerationRequest
from selfcascade.errors import InvalidRequest

# The numeric fields, as a message names them. Whole numbers stay exact (a seed of 2^63 - 1 must not round
# through a float); optional ones are unset (the model's or the preset's default) when empty.
WHOLE_FIELDS = {"width": "width", "height": "height", "steps": "steps", "seed": "seed", "frames": "frames",
                "consensus": "pivot consensus", "free_init": "FreeInit passes", "max_side": "size cap"}
NUMBER_FIELDS = {"strength": "strength", "guidance": "guidance", "anchor": "pivot anchoring",
                 "upper_guidance": "upper-stage guidance", "fps": "fps", "travel": "travel",
                 "steer": "steered share of the first stage"}
OPTIONAL_FIELDS = {"anchor", "upper_guidance", "consensus"}
TEXT_FIELDS = {"prompt", "negative_prompt", "stages"}  # empty is "" (no prompt, automatic stages)


def number(value, name: str) -> float:
    """A finite number from a field (a visitor may send any JSON value): InvalidRequest otherwise."""
    if value is None or value == "":
        raise InvalidRequest(f"{name} is empty")
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequest(f"{name} must be a number, not {str(value)[:40]!r}") from None
    if isinstance(value, bool) or not math.isfinite(result):
        raise InvalidRequest(f"{name} must be a finite number, not {str(value)[:40]}")
    return result


def optional_number(value, name: str = "this setting") -> float | None:
    """An optional numeric setting: empty means unset (the model's or the preset's default)."""
    return None if value in (None, "") else number(value, name)


def whole_number(value, name: str) -> int:
    """A whole number from a field; an int stays exact (a seed of 2^63 must not round through float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    result = number(value, name)
    if result != int(result):
        raise InvalidRequest(f"{name} must be a whole number, not {value}")
    return int(result)


def text_field(value, name: str) -> str | None:
    """An optional text field (VAE, scheduler, ...): stripped, None when empty; anything but text is refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"the {name} must be text, not {type(value).__name__}")
    return value.strip() or None


def _field_value(name: str, value, default):
    if name in WHOLE_FIELDS:
        if name in OPTIONAL_FIELDS and value in (None, ""):
            return None
        return whole_number(value, WHOLE_FIELDS[name])
    if name in NUMBER_FIELDS:
        if name in OPTIONAL_FIELDS:
            return optional_number(value, NUMBER_FIELDS[name])
        result = number(value, NUMBER_FIELDS[name])
        return int(result) if name == "fps" and result.is_integer() else result  # 8 fps is recorded as 8
    if name in TEXT_FIELDS:
        return "" if value is None else value  # the request's check refuses what is not text
    if isinstance(default, str) or default is None:  # a choice or a name: empty means the default
        text = text_field(value, name.replace("_", " "))
        return default if text is None else text
    return value


def request_from_fields(request_class: type[GenerationRequest] = GenerationRequest, **fields) -> GenerationRequest:
    """A checked `request_class` from named values; a field left out or empty takes the request's default.

    Raises InvalidRequest with one line for a name the request does not have, a value of the wrong kind, or
    anything the request's own check refuses."""
    defaults = {item.name: item for item in dataclasses.fields(request_class)}
    unknown = sorted(set(fields) - set(defaults))
    if unknown:
        raise InvalidRequest(f"unknown setting {unknown[0]!r}")
    values = {}
    for name, value in fields.items():
        item = defaults[name]
        if item.default is not dataclasses.MISSING:
            default = item.default
        else:  # a list or dict (loras, tuning) passes as given; the request's check reads it
            default = item.default_factory() if item.default_factory is not dataclasses.MISSING else None
        values[name] = _field_value(name, value, default)
    for required in ("prompt", "width", "height"):
        if required not in values:
            raise InvalidRequest(f"{required} is missing")
    request = request_class(**values)
    request.check()
    return request
