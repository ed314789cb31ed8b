"""What a training run is asked for, and what it reports: Algorithm 1's request (TrainingRequest, checked before
any example is rendered or file copied) and its progress events (TrainingStarted, TrainingStep, TrainingDone).

Limits, checked by TrainingRequest.check (one line each): each side of the stage size from MIN_TRAIN_SIDE (16) to
MAX_TRAIN_SIDE px (env SELFCASCADE_MAX_TRAIN_SIDE: 2048 on your own machine, 512 on a shared Space, where a
100000 px request once rendered the examples at that size until the server ran out of memory); whole numbers for
steps, batch, frames, widths and the seed, finite numbers for the learning rate and strength.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

from selfcascade.adapters.designs import DEFAULT_DESIGN, DEFAULT_OBJECTIVE, DESIGNS, OBJECTIVES
from selfcascade.cascade.stages import Size
from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import cap
from selfcascade.training.distributed import MAX_GRAD_ACCUM, MIXED_PRECISION_CHOICES

MAX_TRAIN_FRAMES = 64  # frames per training clip (AnimateDiff's motion modules were trained on 16-32)
MIN_TRAIN_SIDE = 16  # px per side of the stage size: its pivot is half of it
# px per side of the stage size trained for: the example renders, the crops and every activation grow with its
# square, and 512 is the largest stage of the models a Space serves (SD 1.5's native size).
MAX_TRAIN_SIDE = cap("SELFCASCADE_MAX_TRAIN_SIDE", 2048, 512)


@dataclass
class TrainingRequest:
    images: list[str]  # image files, or for a video model clips (videos, folders of frames; training_clips)
    size: Size  # the stage size trained for (the pivot is half of it per side)
    steps: int = 200
    learning_rate: float = 1e-3
    batch: int = 4
    caption: str = ""  # used for images without a .txt beside them
    strength: float = 0.5  # K / T: the largest timestep trained, as used at inference
    model: str | None = None
    out: str = ""
    resume: str | None = None
    seed: int = 0
    checkpoint_every: int = 0  # save the adapter to `out` every N steps (0: only at the end)
    mixed_precision: str | None = None  # no, fp16 (CUDA), bf16; None: the launcher's (accelerate config), else no
    grad_accum: int | None = None  # micro-batches per optimizer step; None: the launcher's, else 1
    frames: int = 8  # a video model's clip length (the batch counts clips); ignored for image models
    objective: str = DEFAULT_OBJECTIVE  # OBJECTIVES: what the upsamplers learn
    design: str = DEFAULT_DESIGN  # upsampler.DESIGNS: mixing channels, or channel-shared filters (the paper's size)
    width: int | None = None  # filters per upsampler convolution (None: the design's default); resume keeps its own

    def check(self) -> None:
        """InvalidRequest with one line naming the field, its limits and the value, for any value out of range or
        of the wrong kind (NaN, infinity, a fraction where a whole number is needed). Runs before any example is
        rendered or file copied: the stage size bounds all of that work."""
        _check_size(self.size)
        _whole(self.steps, "steps", 1, 100_000)
        _real(self.learning_rate, "learning rate", 0.1)
        _whole(self.batch, "batch", 1, 64)
        _real(self.strength, "strength", 1)
        _whole(self.checkpoint_every, "checkpoint every", 0, 100_000, " (0: only at the end)")
        _whole(self.seed, "seed", -2**63, 2**64 - 1)  # what torch.manual_seed takes
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION_CHOICES:
            raise InvalidRequest(f"unknown mixed precision {self.mixed_precision!r}; choose one of "
                                 f"{', '.join(MIXED_PRECISION_CHOICES)}")
        if self.objective not in OBJECTIVES:
            raise InvalidRequest(f"unknown training objective {self.objective!r}; choose one of "
                                 f"{', '.join(OBJECTIVES)}")
        if self.design not in DESIGNS:
            raise InvalidRequest(f"unknown upsampler design {self.design!r}; choose one of {', '.join(DESIGNS)}")
        if self.width is not None:
            _whole(self.width, "upsampler width", 1, 64, " filters")
        _whole(self.frames, "frames", 1, MAX_TRAIN_FRAMES)
        if self.grad_accum is not None:
            _whole(self.grad_accum, "gradient accumulation", 1, MAX_GRAD_ACCUM, " steps")


def _is_whole(value) -> bool:
    """An int (numpy's too), not a bool: True would train for one step."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _whole(value, name: str, low: int, high: int, unit: str = "") -> None:
    """InvalidRequest unless `value` is a whole number from `low` to `high`."""
    if not _is_whole(value) or not low <= value <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}{unit}, not {value!r}")


def _real(value, name: str, high: float) -> None:
    """InvalidRequest unless `value` is a finite number in (0, high]; `not 0 < nan <= high` alone would pass NaN."""
    finite = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not finite or not 0 < value <= high:
        raise InvalidRequest(f"{name} must be a number in (0, {high:g}], not {value!r}")


def _check_size(size) -> None:
    """The stage size: two whole numbers from MIN_TRAIN_SIDE to MAX_TRAIN_SIDE px."""
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise InvalidRequest(f"the stage size must be WIDTHxHEIGHT (two whole numbers), not {size!r}")
    for side, name in zip(size, ("width", "height")):
        _whole(side, f"stage {name}", MIN_TRAIN_SIDE, MAX_TRAIN_SIDE, " px")


@dataclass
class TrainingStarted:
    """First event: how the run is spread (the CLI prints it on the main process)."""

    steps: int
    batch: int  # per process and micro-batch
    processes: int
    grad_accum: int
    mixed_precision: str
    distributed: str  # accelerate's DistributedType: NO, MULTI_CPU, MULTI_GPU, ...
    backend: str  # gloo, nccl, or "-" for one process
    device: str
    main_process: bool = True
    frames: int = 1  # a video model's clip length: the batch counts clips of this many frames

    @property
    def effective_batch(self) -> int:
        """Images per optimizer step: per-process batch x processes x gradient accumulation."""
        return self.batch * self.processes * self.grad_accum

    def describe(self) -> str:
        spread = (f"{self.processes} processes ({self.distributed}, {self.backend})" if self.processes > 1
                  else "1 process")
        return (f"training on {spread}, {self.device}: effective batch {self.effective_batch} = batch "
                f"{self.batch} x {self.processes} process{'es' if self.processes > 1 else ''} x "
                f"{self.grad_accum} accumulation step{'s' if self.grad_accum > 1 else ''}"
                f"{f' (clips of {self.frames} frames)' if self.frames > 1 else ''}; "
                f"mixed precision {self.mixed_precision}; {self.steps} steps")


@dataclass
class TrainingStep:
    step: int
    steps: int
    loss: float
    steps_per_second: float
    eta_seconds: float
    checkpoint: Path | None = None  # the adapter folder when this step saved one (live samples load it)


@dataclass
class TrainingDone:
    path: Path
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    stopped: bool = False  # cancelled: `path` holds the weights after `steps` finished steps
