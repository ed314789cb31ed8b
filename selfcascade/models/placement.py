"""Where a loaded pipeline lives: on the GPU, or in CPU RAM with model CPU offload; attention through SDPA.

Model CPU offload (diffusers' `enable_model_cpu_offload`, accelerate hooks) keeps each component in CPU RAM
and moves it to the GPU only for its own forward pass: the GPU then holds the UNet's weights and the
activations, not the text encoders and VAE beside them. It needs an accelerator (diffusers raises without
one), so on the CPU it is never used. `auto` offloads when the weights would take more than
OFFLOAD_ABOVE of the GPU's free memory, leaving too little room for the activations of a large stage.
"""

from __future__ import annotations

import torch
from accelerate import PartialState
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from selfcascade.models.memory import free_memory, module_bytes
from selfcascade.models.precision import accelerator

OFFLOAD_CHOICES = ("auto", "on", "off")
OFFLOAD_ABOVE = 0.6


def pipeline_modules(pipeline) -> list[torch.nn.Module]:
    return [part for part in pipeline.components.values() if isinstance(part, torch.nn.Module)]


def wants_offload(choice: str, weights: int, free: int | None, device: str | None) -> bool:
    """Offload under `choice` for `weights` bytes on `device` with `free` bytes (None: unknown)."""
    if device != "cuda" or choice == "off":
        return False
    if choice == "on":
        return True
    return free is not None and weights > OFFLOAD_ABOVE * free


def place(pipeline, choice: str = "auto") -> bool:
    """Move `pipeline` to the accelerator, or offload it there; returns whether it is offloaded."""
    device = accelerator()
    if device is None:
        return False
    if wants_offload(choice, module_bytes(*pipeline_modules(pipeline)), free_memory(device), device):
        pipeline.enable_model_cpu_offload(device=device)
        return True
    pipeline.to(device)
    return False


def use_sdpa(pipeline) -> None:
    """Every attention of the UNet and VAE through torch's scaled_dot_product_attention (AttnProcessor2_0,
    diffusers' default on torch 2): memory-efficient or flash kernels, no seq x seq matrix. Processors a
    model folder set to the old non-SDPA AttnProcessor are replaced; custom ones are kept."""
    for model in (pipeline.unet, pipeline.vae):
        processors = model.attn_processors
        if any(type(processor) is AttnProcessor for processor in processors.values()):
            model.set_attn_processor({name: AttnProcessor2_0() if type(processor) is AttnProcessor else processor
                                      for name, processor in processors.items()})


def attention_kinds(model) -> set[str]:
    """Class names of the attention processors of `model` (for tests and the benchmarks)."""
    return {type(processor).__name__ for processor in model.attn_processors.values()}


def cpu_only() -> bool:
    """Whether accelerate must be told to run on the CPU: no GPU here. cpu=True is also what makes accelerate use
    gloo (MULTI_CPU) under torchrun."""
    return accelerator() is None


def process_state() -> PartialState:
    """This process's place in a launch (accelerate's PartialState: rank, process count, device, process group):
    under torchrun or `accelerate launch` the group the launcher set up, else the one-process state. Each rank
    gets its own device (`state.device`: its GPU, made the current one, or the CPU). Inference (cascade/batch.py)
    needs only this; training builds its Accelerator (training/distributed.start_run) on the same state."""
    return PartialState(cpu=cpu_only())
