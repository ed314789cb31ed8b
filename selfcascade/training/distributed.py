"""Data-parallel training with accelerate: the process's Accelerator, different data per rank, the start line.

Algorithm 1 scales out as plain data parallelism. Every process holds the frozen model and a copy of the
upsamplers and draws its own batch; accelerate wraps the upsamplers in DistributedDataParallel, which
averages their gradients across processes. So N processes with batch B follow the same expected update as
one process with batch N*B. Launch with `torchrun --nproc_per_node N -m selfcascade train ...` (CPU: gloo) or
`accelerate launch` with a multi-GPU config (NCCL); without a launcher it is the ordinary one-process run.
"""

from __future__ import annotations

import hashlib
import os

from accelerate import Accelerator
from accelerate.state import AcceleratorState

from selfcascade.errors import InvalidRequest
from selfcascade.models.placement import cpu_only
from selfcascade.models.precision import accelerator as gpu_kind

MIXED_PRECISION_CHOICES = ("no", "fp16", "bf16")
# The frozen model's weights in the mixed-precision dtype, as diffusers' training scripts hold them; the
# trainable upsamplers stay float32 and autocast mixes the two.
FROZEN_DTYPE = {"no": "float32", "fp16": "float16", "bf16": "bfloat16"}
MAX_GRAD_ACCUM = 1024

_accelerator: Accelerator | None = None


def resolve_options(mixed_precision: str | None, grad_accum: int | None) -> tuple[str, int]:
    """The options a run uses: its own, else what `accelerate launch` put in the environment, else no / 1."""
    precision = mixed_precision or os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    precision = precision.lower()
    if precision not in MIXED_PRECISION_CHOICES:
        raise InvalidRequest(f"unknown mixed precision {precision!r}; choose one of "
                             f"{', '.join(MIXED_PRECISION_CHOICES)}")
    if precision == "fp16" and gpu_kind() != "cuda":
        raise InvalidRequest("mixed precision fp16 needs a CUDA GPU; on the CPU use bf16 or no")
    steps = grad_accum if grad_accum is not None else int(os.environ.get("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", 1))
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_GRAD_ACCUM:
        raise InvalidRequest(f"gradient accumulation must be from 1 to {MAX_GRAD_ACCUM} steps, not {steps!r}")
    return precision, steps


def start_run(mixed_precision: str | None = None, grad_accum: int | None = None) -> Accelerator:
    """The process's Accelerator, set up for one training run.

    accelerate keeps its state in process-wide singletons (AcceleratorState: device, process group, mixed
    precision; GradientState: accumulation), so the Accelerator is made once and reused:
    - gradient accumulation may change between runs: accelerate updates it in place;
    - another mixed precision in a one-process run (the app training twice) clears AcceleratorState and
      makes a new Accelerator; the PartialState (device, process group) is kept. That is the only change
      accelerate allows after its state exists;
    - under a launcher with several processes the precision is fixed for the process: another is refused.
    The step counter and the references to the previous run's model and optimizer are cleared.
    """
    global _accelerator
    precision, steps = resolve_options(mixed_precision, grad_accum)
    if _accelerator is not None and _accelerator.mixed_precision != precision:
        if _accelerator.num_processes > 1:
            raise InvalidRequest(f"this process trains in mixed precision {_accelerator.mixed_precision}; "
                                 f"start a new launch for {precision}")
        AcceleratorState._reset_state(reset_partial_state=False)
        _accelerator = None
    if _accelerator is None:
        # cpu=True is what makes accelerate use gloo (MULTI_CPU) under torchrun; a GPU is used when present.
        _accelerator = Accelerator(cpu=cpu_only(), mixed_precision=precision,
                                   gradient_accumulation_steps=steps)
    _accelerator.gradient_accumulation_steps = steps
    _accelerator.free_memory()  # also resets the step counter that accumulate() counts with
    return _accelerator


def rank_seed(seed: int, rank: int) -> int:
    """Rank 0 keeps the user's seed (a one-process run is unchanged); every other rank an independent one.

    Each process draws random crops with replacement from all the images, so independent streams give the
    same distribution as one process drawing the whole effective batch.
    """
    if rank == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{rank}".encode()).digest()[:7], "big")


def layout(accelerator: Accelerator) -> dict:
    """How this run is spread: processes, backend, device, mixed precision, accumulation."""
    state = accelerator.state
    return {"processes": accelerator.num_processes, "rank": accelerator.process_index,
            "main_process": accelerator.is_main_process,
            "distributed": str(accelerator.distributed_type).split(".")[-1],
            "backend": getattr(state, "backend", None) or "-", "device": str(accelerator.device),
            "mixed_precision": accelerator.mixed_precision, "grad_accum": accelerator.gradient_accumulation_steps}
