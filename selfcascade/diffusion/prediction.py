"""Moving between a model's output and its clean estimate, and predictors that edit the clean estimate.

With z_t = sqrt(a) x0 + sqrt(1 - a) eps (DDPM notation, a = alpha_bar_t), a UNet predicts eps, v or x0
itself (the scheduler config's `prediction_type`). Pivot anchoring, a video's motion steering and pivot
consensus all work on x0: `edits_clean_estimate` wraps a noise predictor so that its x0 passes through an
edit and the output the scheduler needs is recomputed from the edited x0 (no change to the denoising loop).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (latents, timestep) -> model output


def alpha_bar_at(alphas_cumprod: torch.Tensor, timestep, like: torch.Tensor) -> torch.Tensor:
    """alpha_bar_t as a float32 scalar on `like`'s device."""
    return alphas_cumprod[int(timestep)].to(device=like.device, dtype=torch.float32)


def clean_estimate(output: torch.Tensor, latents: torch.Tensor, alpha_bar: torch.Tensor,
                   prediction_type: str) -> torch.Tensor:
    """x0 from the model output at z_t = sqrt(a) x0 + sqrt(1 - a) eps."""
    if prediction_type == "epsilon":
        return (latents - (1 - alpha_bar).sqrt() * output) / alpha_bar.sqrt()
    if prediction_type == "v_prediction":
        return alpha_bar.sqrt() * latents - (1 - alpha_bar).sqrt() * output
    if prediction_type == "sample":
        return output
    raise ValueError(f"unknown prediction type {prediction_type!r}")


def output_for(x0: torch.Tensor, latents: torch.Tensor, alpha_bar: torch.Tensor,
               prediction_type: str) -> torch.Tensor:
    """The model output that `clean_estimate` maps back to `x0` for the same z_t (its inverse)."""
    if prediction_type == "epsilon":
        return (latents - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()
    if prediction_type == "v_prediction":
        eps = (latents - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()
        return alpha_bar.sqrt() * eps - (1 - alpha_bar).sqrt() * x0
    if prediction_type == "sample":
        return x0
    raise ValueError(f"unknown prediction type {prediction_type!r}")


def edits_clean_estimate(predict: Predictor, alphas_cumprod: torch.Tensor, prediction_type: str,
                         edit: Callable[[torch.Tensor], torch.Tensor], from_timestep: int = 0) -> Predictor:
    """`predict` with its clean estimate replaced by `edit(x0)` (float32) at timesteps >= `from_timestep`;
    the output keeps `predict`'s dtype."""

    def predict_edited(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        output = predict(latents, t)
        if int(t) < from_timestep:
            return output
        alpha_bar = alpha_bar_at(alphas_cumprod, t, latents)
        z = latents.float()
        x0 = edit(clean_estimate(output.float(), z, alpha_bar, prediction_type))
        return output_for(x0, z, alpha_bar, prediction_type).to(output.dtype)

    return predict_edited
