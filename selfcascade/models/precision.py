"""Which floating-point type a run uses, and the check that stops a run whose numbers overflowed.

`auto` is float16 on a CUDA (or Apple MPS) GPU and float32 on the CPU. float16 rather than bfloat16 on a GPU:
every CUDA GPU runs it at full speed (bfloat16 needs Ampere or newer; a T4 has none), the published SD / SDXL
weights are float16, and its 10-bit mantissa keeps more detail than bfloat16's 7. Its weak point, the
range (65504), bites in the SDXL VAE, whose config sets `force_upcast`: that VAE then runs in float32 (as
diffusers' own pipelines do), and anything that still overflows is caught by `check_finite`, whose message
points to bfloat16 (float32's range) or float32.
"""

from __future__ import annotations

import torch

from selfcascade.errors import InvalidRequest

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DTYPE_CHOICES = ("auto", *DTYPES)
FP16_FIX_VAE = "madebyollin/sdxl-vae-fp16-fix"


class NonFiniteResult(InvalidRequest):
    """NaN or Inf appeared in latents or pixels: the run stops instead of saving a black image."""


def accelerator() -> str | None:
    """'cuda' or 'mps' when such a device is usable, else None (CPU only)."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return None


def check_dtype_choice(choice: str | None) -> None:
    if choice is not None and choice not in DTYPE_CHOICES:
        raise InvalidRequest(f"unknown dtype {choice!r}; choose one of {', '.join(DTYPE_CHOICES)}")


def resolve_dtype(choice: str | None, device: str | None = None) -> torch.dtype:
    """The torch dtype for `choice` ('auto' or None: float16 on an accelerator, float32 on the CPU)."""
    check_dtype_choice(choice)
    if choice in DTYPES:
        return DTYPES[choice]
    device = accelerator() if device is None else device
    return torch.float16 if device in ("cuda", "mps") else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def vae_dtype(force_upcast: bool, run_dtype: torch.dtype) -> torch.dtype:
    """float32 for a VAE whose config asks for it (`force_upcast`, diffusers' default) when the run is
    float16, as diffusers' pipelines do; bfloat16 has float32's range and keeps its dtype."""
    return torch.float32 if run_dtype == torch.float16 and force_upcast else run_dtype


def check_finite(tensor: torch.Tensor, where: str, likely_cause: str) -> None:
    """Raise NonFiniteResult when `tensor` holds NaN or Inf. One reduction: cheap next to a UNet call."""
    if not bool(torch.isfinite(tensor).all()):
        raise NonFiniteResult(f"the run stopped: {where} contain NaN or Inf values ({likely_cause})")


def unet_overflow_hint(dtype: torch.dtype) -> str:
    if dtype == torch.float16:
        return ("the UNet overflowed in float16; use --dtype bfloat16 on a GPU that supports it, or "
                "--dtype float32")
    return f"the model produced non-finite values in {dtype_name(dtype)}; check the model's weights"


def vae_overflow_hint(dtype: torch.dtype) -> str:
    if dtype == torch.float16:
        return (f"the VAE overflowed in float16; use --dtype float32, or an fp16-fix VAE via --vae "
                f"{FP16_FIX_VAE} for SDXL")
    return f"the VAE produced non-finite values in {dtype_name(dtype)}; check the VAE's weights"
