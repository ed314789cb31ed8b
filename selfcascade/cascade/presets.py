"""Named settings in selfcascade/assets/presets/*.json (package data), validated on load; and the sampling defaults
for a model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from selfcascade.cascade.request import DEFAULT_MAX_SIDE, GenerationRequest
from selfcascade.diffusion.anchor import DEFAULT_ANCHOR
from selfcascade.diffusion.upper_stage import DEFAULT_STRATEGY, canonical_strategy
from selfcascade.errors import InvalidRequest
from selfcascade.models.loader import is_embedded_video, resolve
from selfcascade.models.names import ASSETS

PRESET_FOLDER = ASSETS / "presets"
PRESET_MAX_SIDE = 16384  # what a preset file may ask for at all; hosts run those within their own cap
SAMPLING_KEYS = ("steps", "strength", "guidance", "upper_guidance", "scheduler", "upper", "anchor", "pivot_up",
                 "consensus")
# The paper's settings for hub models (50 DDIM steps, K = 700 of 1000) and the project's default upper-stage
# strategy and pivot anchoring; used when no preset names the model.
PAPER_DEFAULTS = {"steps": 50, "strength": 0.7, "guidance": 7.5, "scheduler": "ddim", "upper": DEFAULT_STRATEGY,
                  "anchor": DEFAULT_ANCHOR, "consensus": 0}  # consensus: unmeasured on hub models, so off
# The embedded video model samples like the embedded image model under it, except that its upper stages keep
# more of the pivot: at 256 px, 16 frames, 8 videos (benchmarks/video.py) frames correct 0.63 at weight 1
# against 0.45 at the image presets' 0.5 (the frames' circles flatten when less is anchored). Weight 0.75,
# measured later (docs/video-model.md, Tuned video): tuned 101 -> 106 of 128 frames (seeds from 100) and
# 109 -> 113 (held out, from 900), tuning-free 90 -> 89 and 97 -> 97.
EMBEDDED_VIDEO_ANCHOR = 0.75
_FIELDS = {"name", "description", "model", "prompt", "negative_prompt", "width", "height", "mode", "stages",
           *SAMPLING_KEYS}
# What only a cascade uses (its upper stages and pivots): the direct baseline leaves them to the request, which
# runs the paper's direct sampling, one plain full-size call with no pivot anchoring, unless a caller sets them.
CASCADE_KEYS = ("upper", "anchor", "upper_guidance", "pivot_up", "consensus")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: str | None
    settings: dict  # GenerationRequest fields

    def fits(self, max_side: int = DEFAULT_MAX_SIDE) -> bool:
        """Whether this host's size cap admits the preset's target (a Space caps at 2048 px per side)."""
        return max(self.settings["width"], self.settings["height"]) <= max_side

    def request(self, **overrides) -> GenerationRequest:
        fields = {"prompt": "", "model": self.model, **self.settings, **overrides}
        return GenerationRequest(**fields)


def parse_preset(data: dict, source: str) -> Preset:
    """A preset from its JSON object; InvalidRequest naming the file and the problem."""
    if not isinstance(data, dict):
        raise InvalidRequest(f"{source}: a preset is a JSON object")
    unknown = set(data) - _FIELDS
    if unknown:
        raise InvalidRequest(f"{source}: unknown keys {sorted(unknown)}")
    for key in ("name", "width", "height"):
        if key not in data:
            raise InvalidRequest(f"{source}: missing {key!r}")
    settings = {k: v for k, v in data.items() if k not in ("name", "description", "model")}
    if "upper" in settings:  # a preset written with an earlier strategy name (rau-pyramid, ...) still loads
        settings["upper"] = canonical_strategy(settings["upper"])
    try:  # a preset is valid whatever this host's size cap; `Preset.fits` says whether it can run here
        GenerationRequest(**{"prompt": "", **settings, "max_side": PRESET_MAX_SIDE}).check()
    except InvalidRequest as error:
        raise InvalidRequest(f"{source}: {error}") from None
    except TypeError as error:
        raise InvalidRequest(f"{source}: {error}") from None
    return Preset(str(data["name"]), str(data.get("description", "")), data.get("model"), settings)


def load_presets(folder: Path = PRESET_FOLDER) -> dict[str, Preset]:
    """Every *.json in `folder` (the shipped presets by default), by name, in file-name order."""
    presets = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise InvalidRequest(f"{path.name}: not valid JSON ({error})") from None
        preset = parse_preset(data, path.name)
        presets[preset.name] = preset
    return presets


def upper_guidance_of(settings: dict):
    """The guidance the upper stages run with under `settings`: their own, else the first stage's."""
    own = settings.get("upper_guidance")
    return settings.get("guidance", "") if own is None else own


def request_defaults(model_id: str | None, mode: str | None = None) -> dict:
    """Sampling settings for a model: those of the first preset that names it, else the paper's. The embedded
    video model samples like the embedded image model under it, with its own anchoring weight. For `mode`
    "direct" the cascade's settings (CASCADE_KEYS) are left out, so the baseline is the paper's: a preset's
    upper-stage strategy is for its cascade, and a direct run uses one only when asked for it explicitly."""
    settings = _model_defaults(model_id)
    if mode == "direct":
        return {key: value for key, value in settings.items() if key not in CASCADE_KEYS}
    return settings


def _model_defaults(model_id: str | None) -> dict:
    video = is_embedded_video(model_id)
    wanted = resolve(None if video else model_id)
    for preset in load_presets().values():
        if resolve(preset.model) == wanted:
            settings = {key: preset.settings[key] for key in SAMPLING_KEYS if key in preset.settings}
            if not video:
                return settings
            settings.pop("consensus", None)  # images only (cascade.py): not measured on videos
            return {**settings, "anchor": EMBEDDED_VIDEO_ANCHOR}
    return dict(PAPER_DEFAULTS)
