"""Reconstruction loss of the embedded VAE: edges and flat colour both weighted, so a 16 x 16 latent keeps
the outline a cascade will enlarge.

Why: a cascade keeps the geometry of its 64 px first stage, and the VAE's round trip is the first limit on
it (docs/experiments.md, "What limits every cascade here"). A plain per-pixel loss is dominated by flat background, so
the VAE learnt to round corners and bend straight sides: true renders through the shipped VAE passed the
strict judge at 256 px 37 of 48 times. Weighting pixels near an edge (`edge_weight`) puts the loss where the
geometry is; weighting it alone tinted the flat inside of small objects (orange patches on red triangles),
so a second term (`colour_weight`) asks for the right mean colour over every 4 x 4 cell (one latent pixel).
Used by `train_default --refine-vae`; what it did to the round trip and to the cascade is measured in
docs/experiments.md ("What limits every cascade here"). The shipped VAE was trained with both weights 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LATENT_CELL = 4  # pixels per latent pixel of the embedded VAE


def edge_map(images: torch.Tensor) -> torch.Tensor:
    """Per-pixel edge strength in [0, 1]: the largest channel step to a neighbour, dilated by one pixel so
    both sides of an edge (and a corner's neighbourhood) count."""
    step_x = (images[..., :, 1:] - images[..., :, :-1]).abs().amax(1, keepdim=True)
    step_y = (images[..., 1:, :] - images[..., :-1, :]).abs().amax(1, keepdim=True)
    strength = F.pad(step_x, (0, 1, 0, 0)) + F.pad(step_y, (0, 0, 0, 1))
    return F.max_pool2d(strength, 3, stride=1, padding=1).clamp(max=1.0)


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor, edge_weight: float = 0.0,
                        colour_weight: float = 0.0) -> torch.Tensor:
    """MSE + 0.5 L1 per pixel, weighted by 1 + edge_weight * edge_map (normalised to mean weight 1), plus
    colour_weight * L1 between the 4 x 4 cell means. With both weights 0 this is the loss the VAE was first
    trained with."""
    error = reconstruction - target
    per_pixel = error**2 + 0.5 * error.abs()
    if edge_weight:
        weight = 1 + edge_weight * edge_map(target)
        loss = (weight * per_pixel).mean() / weight.mean()
    else:
        loss = per_pixel.mean()
    if colour_weight:
        cells = F.avg_pool2d(error, LATENT_CELL)
        loss = loss + colour_weight * cells.abs().mean()
    return loss
