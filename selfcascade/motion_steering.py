"""Motion steering: a video's first stage travels the way the prompt says ("... moving right").

Measured on the embedded video model (README, The embedded video model): its motion modules move the object,
but the track follows the initial noise, not the direction word; training the text path harder, travelling
initial noise (FreeTraj-like) and masked cross-attention (Peekaboo-like) all left the direction at a coin
toss. The object's *place* in each frame is decided in the noisiest steps, so that is where a direction must
act. During the first `fraction` of the first stage's schedule each clean estimate x0 (frames f = 0..F-1)
is pulled towards a rigid translation along the direction:

    d_f   = travel * side * (f / (F - 1) - 1/2) * (dx, dy)          the frame's offset from the clip's middle
    ref   = x0_m,  m = F // 2                                        the middle frame's estimate (d_m ~ 0)
    x0_f' = x0_f + w * (T(d_f) ref - x0_f)                           w = weight; T: bilinear shift, border pad

and turned back into the model's output for the same z_t (as pivot anchoring does, selfcascade.pivot_anchor).
w = 1 hands the remaining steps a layout that already travels; after the steered steps the model is free,
and its motion modules keep the frames consistent. The reference is one frame, not the least-squares one
(the mean of all frames moved back to the middle): the frames' early estimates put the object where the
noise drifts it, often the other way, and their mean washed small objects out (2 of 16 videos came out
empty at 64 px; with the middle frame none, and the direction right on 16 of 16). What the sampler follows
is a rigid pan of the whole early layout: on a flat background that is the object moving; on a scene it
reads as the camera panning the other way.

How much to steer, measured on the embedded video model (README, Motion steering): steering the noisiest
half of the steps made 64 px circles lumpier (mean outline error 0.32 -> 0.40 px on 12 videos) and cost
frames at 256 px; the noisiest 30% keeps the outlines nearly as they were (0.34 px) and the direction. A
weight of 0.3 kept them too but let the noise win again (direction right on 11 of 16). Shifting the whole
track so that the object stays inside the frame pushed objects against the border and measured worse
(0.50 px); not done. Bicubic or Fourier shifts instead of bilinear ones changed nothing.

The direction comes from `VideoRequest.motion` ("auto": the prompt's "moving <right|left|up|down>", or
"none", or a direction), the distance from `VideoRequest.travel` (fraction of the side over the clip; the
shapes-video model's training clips travel 0.36).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from .pivot_anchor import clean_estimate, output_for
from .upper_stage import Predictor

DIRECTIONS: dict[str, tuple[int, int]] = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}
MOTION_CHOICES = ("auto", "none", *DIRECTIONS)
DEFAULT_TRAVEL = 0.36  # fraction of the side over the clip: what the shapes-video model was trained on
DEFAULT_STEERED_FRACTION = 0.3  # of the first stage's schedule, from the noisiest step (README: measured)
_PROMPTED = re.compile(r"\bmoving\s+(right|left|up|down)\b", re.IGNORECASE)


def prompted_direction(prompt: str) -> str | None:
    """The direction a prompt asks for ("a red circle moving left" -> "left"), or None."""
    match = _PROMPTED.search(prompt or "")
    return match[1].lower() if match else None


def frame_offsets(frames: int, direction: str, travel: float, height: int, width: int) -> torch.Tensor:
    """(frames, 2) offsets (x, y) in latent pixels of each frame from the clip's middle along `direction`."""
    dx, dy = DIRECTIONS[direction]
    progress = torch.linspace(-0.5, 0.5, frames) if frames > 1 else torch.zeros(1)
    return torch.stack([progress * travel * width * dx, progress * travel * height * dy], dim=1)


def translate(latents: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Each image of (N, C, H, W) moved by its (x, y) offset in pixels (bilinear; the border extends)."""
    count, _, height, width = latents.shape
    theta = torch.zeros(count, 2, 3, dtype=latents.dtype, device=latents.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    # affine_grid samples the source at (output - offset): in normalised units a pixel is 2 / side
    theta[:, 0, 2] = -offsets[:, 0].to(latents) * 2 / width
    theta[:, 1, 2] = -offsets[:, 1].to(latents) * 2 / height
    grid = F.affine_grid(theta, list(latents.shape), align_corners=False)
    return F.grid_sample(latents, grid, mode="bilinear", padding_mode="border", align_corners=False)


def travelling_copy(x0: torch.Tensor, offsets: torch.Tensor, frames: int) -> torch.Tensor:
    """Each video's middle frame of `x0` ((videos * frames, C, H, W), frames fastest), moved back to the clip's
    middle and then to every frame's offset: a video that travels rigidly."""
    channels, height, width = x0.shape[1:]
    middle = frames // 2
    videos = x0.reshape(-1, frames, channels, height, width)[:, middle]
    reference = translate(videos, -offsets[middle].expand(videos.shape[0], 2))
    reference = reference[:, None].expand(-1, frames, -1, -1, -1).reshape(x0.shape)
    return translate(reference, offsets.repeat(videos.shape[0], 1))


def steered(predict: Predictor, alphas_cumprod: torch.Tensor, prediction_type: str, frames: int,
            direction: str, travel: float, weight: float = 1.0, from_timestep: int = 500) -> Predictor:
    """Wrap a first-stage predictor so that, at timesteps >= `from_timestep`, each clean estimate is pulled
    with `weight` onto a copy of its middle frame that travels `travel` of the side along `direction`."""

    def predict_steered(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        output = predict(latents, t)
        if int(t) < from_timestep:
            return output
        alpha_bar = alphas_cumprod[int(t)].to(device=latents.device, dtype=torch.float32)
        z, out = latents.float(), output.float()
        x0 = clean_estimate(out, z, alpha_bar, prediction_type)
        offsets = frame_offsets(frames, direction, travel, *x0.shape[-2:])
        x0 = x0 + weight * (travelling_copy(x0, offsets, frames) - x0)
        return output_for(x0, z, alpha_bar, prediction_type).to(output.dtype)

    return predict_steered
