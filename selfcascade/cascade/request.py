"""One validated generation request: what the UI and the CLI fill in, checked before any model work."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from selfcascade.cascade.stages import Size, StagePlan, check_size, parse_stage_list, plan_stages
from selfcascade.diffusion.consensus import MAX_CONSENSUS
from selfcascade.diffusion.motion_steering import (
    DEFAULT_STEERED_FRACTION,
    DEFAULT_TRAVEL,
    MOTION_CHOICES,
    prompted_direction,
)
from selfcascade.diffusion.sampling import SCHEDULERS
from selfcascade.diffusion.upper_stage import STRATEGIES, UpperStageSettings, canonical_strategy
from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import MAX_FRAMES, MAX_NAME_CHARS, MAX_PROMPT_CHARS, MAX_SEED, MAX_SIDE, MAX_STEPS
from selfcascade.models.lora import parse_loras
from selfcascade.models.names import shipped_adapter_for
from selfcascade.models.placement import OFFLOAD_CHOICES
from selfcascade.models.precision import check_dtype_choice
from selfcascade.models.vae import check_tiling_choice

MODES = ("tuning-free", "tuned", "direct", "hires-fix")
# How a pivot reaches the next stage: "latent" bilinear on the latents (the paper's `up`), or "pixel": decode,
# Lanczos in pixel space, encode (in-distribution latents for the VAE and the UNet; the hires-fix way).
PIVOT_UPSAMPLINGS = ("latent", "pixel")
DEFAULT_MAX_SIDE = MAX_SIDE  # the host's cap (selfcascade.files.hosting); a request may set a lower one
MAX_FPS = 60
# FreeInit passes a video's first stage adds (selfcascade.diffusion.free_init); measured on the embedded video model.
DEFAULT_FREE_INIT = 1


def is_number(value) -> bool:
    """A finite int or float (not a bool, NaN or infinity): what every numeric setting must be."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_whole(value) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_guidance(value, name: str) -> None:
    if not (is_number(value) and 0 <= value <= 50):
        raise InvalidRequest(f"{name} must be between 0 and 50, not {value!r}")


def check_seed(seed) -> None:
    """A seed torch takes: a whole number from 0 to 2^63 - 1."""
    if not is_whole(seed) or not 0 <= seed <= MAX_SEED:
        digits = str(seed)
        shown = seed if not isinstance(seed, int) or len(digits) < 25 else f"{digits[:12]}... ({len(digits)} digits)"
        raise InvalidRequest(f"seed must be a whole number from 0 to 2^63 - 1 ({MAX_SEED}), not {shown!r}")


def check_text(value, name: str, limit: int, optional: bool = False) -> None:
    """Text a visitor sends (prompt, ids, names): a string of at most `limit` characters."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidRequest(f"the {name} must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise InvalidRequest(f"the {name} is {len(value)} characters long: at most {limit} are accepted")


@dataclass
class GenerationRequest:
    """Every parameter of one run. `stages` is a user list such as '64,128,256' (empty: automatic)."""

    prompt: str
    width: int
    height: int
    mode: str = "tuning-free"
    negative_prompt: str = ""
    stages: str = ""
    steps: int = 40
    strength: float = 0.5  # K / T: how far each stage >= 1 re-noises its pivot
    guidance: float = 4.0
    seed: int = 0
    scheduler: str | None = None  # None: the model folder's own scheduler
    model: str | None = None  # hub id or local path; None: the embedded default
    adapter: str | None = None  # trained upsamplers (folder or .safetensors), for mode "tuned"
    upper: str | None = None  # upper-stage denoising strategy (selfcascade.diffusion.upper_stage); None: the model's
    anchor: float | None = None  # weight of the pivot's low band at upper stages (pivot_anchor); None: model's
    upper_guidance: float | None = None  # classifier-free guidance of the stages after the first; None: guidance
    pivot_up: str | None = None  # how a pivot reaches the next stage's size (PIVOT_UPSAMPLINGS); None: latent
    consensus: int | None = None  # clean estimates of the first stage averaged into its pivot (pivot_consensus)
    dtype: str = "auto"  # auto (float16 on a GPU, float32 on the CPU), float32, float16, bfloat16
    vae: str | None = None  # a VAE to use instead of the model's own (hub id or folder), e.g. the fp16-fix one
    vae_tiling: str = "auto"  # auto (tiles above 1024x1024), on, off
    offload: str = "auto"  # model CPU offload: auto (when a GPU lacks room for the weights), on, off
    max_side: int = DEFAULT_MAX_SIDE
    extra: dict = field(default_factory=dict)
    tuning: dict = field(default_factory=dict)  # changes to UpperStageSettings (benchmarks vary them)
    loras: list = field(default_factory=list)  # 'PATH_OR_ID[:SCALE]' texts (selfcascade.models.lora)

    default_model = None  # what `model=None` loads (class attribute, not a field): the embedded image model

    def __post_init__(self) -> None:
        self.upper = canonical_strategy(self.upper)  # an earlier name (rau-pyramid, ...) becomes the current one

    def check(self) -> None:
        """Model-independent checks; raise InvalidRequest with one line for the user. Types and lengths come
        first, so a hostile value (a list, NaN, a 5,000-character id, a 10^30 seed) never reaches the rest."""
        self._check_texts()
        self._check_numbers()
        self._check_choices()
        if self.mode == "tuned" and not self.tuned_adapter():  # the embedded models ship theirs
            raise InvalidRequest("mode 'tuned' needs an adapter (trained upsamplers); train one or pick a file")
        check_size((self.width, self.height), "target size", self.max_side)
        if self.stages.strip():  # the list can be checked before a model loads
            plan_stages((16, 16), (self.width, self.height), 1, parse_stage_list(self.stages, (self.width,
                        self.height)), self.max_side)

    def _check_texts(self) -> None:
        check_text(self.prompt, "prompt", MAX_PROMPT_CHARS)
        check_text(self.negative_prompt, "negative prompt", MAX_PROMPT_CHARS)
        check_text(self.stages, "stage list", 200)
        for name, value in (("model", self.model), ("VAE", self.vae), ("adapter", self.adapter)):
            check_text(value, name, MAX_NAME_CHARS, optional=True)
        parse_loras(self.loras)
        for name in ("mode", "scheduler", "upper", "pivot_up", "dtype", "vae_tiling", "offload"):
            check_text(getattr(self, name), name.replace("_", " "), 40, optional=True)

    def _check_numbers(self) -> None:
        if not all(is_whole(value) for value in (self.width, self.height)):
            raise InvalidRequest(f"width and height must be whole numbers, not {self.width!r}x{self.height!r}")
        if not is_whole(self.steps) or not 1 <= self.steps <= MAX_STEPS:
            raise InvalidRequest(f"steps must be a whole number from 1 to {MAX_STEPS}, not {self.steps!r}")
        if not (is_number(self.strength) and 0 < self.strength <= 1):
            raise InvalidRequest(f"strength must be in (0, 1], not {self.strength!r}")
        check_seed(self.seed)
        _check_guidance(self.guidance, "guidance")
        if self.upper_guidance is not None:
            _check_guidance(self.upper_guidance, "upper-stage guidance")
        if self.anchor is not None and not (is_number(self.anchor) and 0 <= self.anchor <= 1):
            raise InvalidRequest(f"pivot anchoring must be between 0 (off) and 1, not {self.anchor!r}")
        if self.consensus is not None and not (is_whole(self.consensus) and 0 <= self.consensus <= MAX_CONSENSUS):
            raise InvalidRequest(f"pivot consensus must be a whole number of estimates from 0 (off) to "
                                 f"{MAX_CONSENSUS}, not {self.consensus!r}")
        if not isinstance(self.tuning, dict) or not set(self.tuning) <= set(UpperStageSettings.names()):
            raise InvalidRequest(f"tuning takes {', '.join(UpperStageSettings.names())}, not {self.tuning!r}")
        if not all(is_number(value) and value > 0 for value in self.tuning.values()):
            raise InvalidRequest(f"tuning values must be positive numbers, not {self.tuning!r}")
        if not is_whole(self.max_side) or self.max_side < 16:
            raise InvalidRequest(f"the size cap must be a whole number of pixels (16 or more), not {self.max_side!r}")

    def _check_choices(self) -> None:
        self.upper = canonical_strategy(self.upper)  # also when set after construction
        for value, name, choices in ((self.mode, "mode", MODES), (self.scheduler, "scheduler", SCHEDULERS),
                                     (self.pivot_up, "pivot up-sampling", PIVOT_UPSAMPLINGS),
                                     (self.upper, "upper-stage strategy", STRATEGIES),
                                     (self.offload, "offload", OFFLOAD_CHOICES)):
            if value is not None and value not in choices:
                raise InvalidRequest(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
        check_dtype_choice(self.dtype)
        check_tiling_choice(self.vae_tiling)

    def plan(self, base_size: Size, size_multiple: int) -> StagePlan:
        """Check everything and decompose the target into stages for a model with these sizes."""
        self.check()
        target = (self.width, self.height)
        if self.mode == "direct":
            return plan_stages(target, target, size_multiple, None, self.max_side)
        user_sizes = parse_stage_list(self.stages, target) if self.stages.strip() else None
        return plan_stages(base_size, target, size_multiple, user_sizes, self.max_side)

    def tuned_adapter(self) -> str | None:
        """The adapter the tuned mode loads: the request's own, else the one shipped for its model (the embedded
        image and video models ship theirs in the package: "shapes-adapter", "shapes-video-adapter"), else None."""
        if self.adapter:
            return self.adapter
        return shipped_adapter_for(self.model if self.model is not None else self.default_model)

    def pivot_upsampling(self) -> str:
        """How this request brings a pivot to the next stage: "pixel" for the hires-fix baseline (and when asked),
        else the request's own, else "latent" (bilinear on the latents, the `up` of the paper's Algorithm 2)."""
        return "pixel" if self.mode == "hires-fix" else (self.pivot_up or "latent")

    def stage_guidance(self, has_pivot: bool) -> float:
        """Classifier-free guidance of one stage: stage 0 (and direct sampling) use `guidance`; the stages
        that refine a pivot use `upper_guidance` when set. The pivot already fixes what the prompt asks for,
        so less guidance there costs nothing in composition and, on the embedded model, paints fewer
        off-colour blemishes (benchmarks/upper_stage.py); guidance 1 also halves their UNet work."""
        if has_pivot and self.upper_guidance is not None:
            return float(self.upper_guidance)
        return float(self.guidance)

    def free_init_passes(self) -> int:
        """Extra FreeInit passes of the first stage (videos only; selfcascade.diffusion.free_init)."""
        return 0

    def upper_stage_settings(self) -> UpperStageSettings:
        """The upper stages' tunables: the measured defaults with this request's changes."""
        return UpperStageSettings(**self.tuning)

    def to_metadata(self) -> dict:
        """The request as a record; `tuning` only when a run changed it (a benchmark's)."""
        skipped = ("extra", "max_side", "loras") + (() if self.tuning else ("tuning",))  # loras: by public name
        return {key: value for key, value in asdict(self).items() if key not in skipped}


@dataclass
class VideoRequest(GenerationRequest):
    """A text-to-video request: every image setting plus the frame count (kept across stages) and the fps
    of the written file. Video sizes must be even (H.264 with yuv420p halves the chroma)."""

    frames: int = 16
    fps: int = 8
    free_init: int = DEFAULT_FREE_INIT  # extra first-stage passes, each from the last one's low frequencies
    motion: str = "auto"  # direction the first stage steers to (motion_steering): auto = the prompt's, none, ...
    travel: float = DEFAULT_TRAVEL  # how far it travels over the clip, as a fraction of the side
    steer: float = DEFAULT_STEERED_FRACTION  # share of the first stage's schedule that is steered (0: off)

    default_model = "shapes-video"  # the embedded video model (selfcascade/assets/shapes-video)

    def free_init_passes(self) -> int:
        return self.free_init

    def motion_direction(self) -> str | None:
        """The direction the first stage is steered to: the request's, or with "auto" the prompt's
        ("... moving left"); None when there is none or steering is off."""
        if self.steer == 0 or self.motion == "none":
            return None
        return prompted_direction(self.prompt) if self.motion == "auto" else self.motion

    def check(self) -> None:
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or not 1 <= self.frames <= MAX_FRAMES:
            raise InvalidRequest(f"frames must be a whole number from 1 to {MAX_FRAMES}, not {self.frames!r}")
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not 0 < self.fps <= MAX_FPS:
            raise InvalidRequest(f"fps must be above 0 and at most {MAX_FPS}, not {self.fps!r}")
        if isinstance(self.free_init, bool) or not isinstance(self.free_init, int) or not 0 <= self.free_init <= 4:
            raise InvalidRequest(f"free_init (extra first-stage passes) must be a whole number from 0 to 4, "
                                 f"not {self.free_init!r}")
        if self.motion not in MOTION_CHOICES:
            raise InvalidRequest(f"unknown motion {self.motion!r}; choose one of {', '.join(MOTION_CHOICES)}")
        for value, name, top in ((self.travel, "travel (fraction of the side over the clip)", 2),
                                 (self.steer, "steer (share of the first stage's steps)", 1)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
                raise InvalidRequest(f"{name} must be between 0 and {top}, not {value!r}")
        super().check()
        if self.width % 2 or self.height % 2:
            raise InvalidRequest(f"a video's width and height must be even (H.264), not {self.width}x{self.height}")
