"""Motion steering: a video's first stage travels the way the prompt says ("... moving right").

Measured on the embedded video model (docs/video-model.md): its motion modules move the object,
but the track follows the initial noise, not the direction word; training the text path harder, travelling
initial noise (FreeTraj-like) and masked cross-attention (Peekaboo-like) all left the direction at a coin
toss. The object's *place* in each frame is decided in the noisiest steps, so that is where a direction must
act. During the first `fraction` of the first stage's schedule each clean estimate x0 (frames f = 0..F-1)
is pulled towards a rigid translation along the direction:

    d_f   = travel * side * (f / (F - 1) - 1/2) * (dx, dy)          the frame's offset from the clip's middle
    r     = argmax_f salience(x0_f)                                  the frame whose estimate shows the object best
    a     = d_r, moved only as far as keeps the track inside         track_anchor
    x0_f' = x0_f + w * (T(d_f - a) x0_r - x0_f)                      w = weight; T: bilinear shift, border pad

and turned back into the model's output for the same z_t (as pivot anchoring does, selfcascade.diffusion.anchor).
w = 1 hands the remaining steps a layout that already travels; after the steered steps the model is free,
and its motion modules keep the frames consistent. The reference is one frame, not the least-squares one
(the mean of all frames moved back to the middle): the frames' early estimates put the object where the
noise drifts it, often the other way, and their mean washed small objects out (2 of 16 videos came out
empty at 64 px). Until 2026-12-04 it was always the middle frame; but an early estimate often holds the
object in some frames and not in the middle one, and a copy of an empty frame steered every frame empty
(3 of 16 triangle videos at 64x48, 2 of 8 videos of the 256x192 benchmark). The clearest frame keeps the
object. Its place on the track is its own frame's offset, unless the track would carry the object out of
the frame; then it starts (or ends) where the noise put it and travels inwards. What the sampler follows
is a rigid pan of the whole early layout: on a flat background that is the object moving; on a scene it
reads as the camera panning the other way.

How much to steer, measured on the embedded video model (docs/video-model.md, Motion steering): steering the noisiest
half of the steps made 64 px circles lumpier (mean outline error 0.32 -> 0.40 px on 12 videos) and cost
frames at 256 px; the noisiest 30% keeps the outlines nearly as they were (0.34 px) and the direction. A
weight of 0.3 kept them too but let the noise win again (direction right on 11 of 16). Shifting the whole
track so that the object stays inside the frame pushed objects against the border and measured worse
(0.50 px); track_anchor does not move the object off its own track, it only picks where on it the object
stands. Bicubic or Fourier shifts instead of bilinear ones changed nothing.

The direction comes from `VideoRequest.motion` ("auto": the prompt's "moving <right|left|up|down>", or
"none", or a direction), the distance from `VideoRequest.travel` (fraction of the side over the clip; the
shapes-video model's training clips travel 0.36).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from selfcascade.diffusion.prediction import Predictor, edits_clean_estimate

DIRECTIONS: dict[str, tuple[int, int]] = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}
MOTION_CHOICES = ("auto", "none", *DIRECTIONS)
DEFAULT_TRAVEL = 0.36  # fraction of the side over the clip: what the shapes-video model was trained on
DEFAULT_STEERED_FRACTION = 0.3  # of the first stage's schedule, from the noisiest step (docs/video-model.md: measured)
TRACK_MARGIN = 0.15  # fraction of the side kept between a steered object's centre and the border (about its radius)
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


def _distance_from_background(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W): each pixel's squared distance from its (N, C, H, W) image's median colour."""
    background = images.flatten(2).median(dim=2).values[..., None, None]
    return (images - background).pow(2).sum(dim=1)


def salience(images: torch.Tensor) -> torch.Tensor:
    """(N,): how strongly something stands out of each image: the mean of its 2% most distant pixels."""
    distance = _distance_from_background(images).flatten(1)
    return distance.topk(max(1, distance.shape[1] // 50), dim=1).values.mean(dim=1)


def salient_centre(images: torch.Tensor) -> torch.Tensor:
    """(N, 2) (x, y) in pixels of what stands out of each (N, C, H, W) image: the centroid of its distance
    from the median colour above the median distance (the flat background's share)."""
    distance = _distance_from_background(images)
    weights = (distance - distance.flatten(1).median(dim=1).values[:, None, None]).clamp_min(0)
    weights = weights / weights.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    ys = torch.arange(images.shape[-2], dtype=images.dtype, device=images.device)
    xs = torch.arange(images.shape[-1], dtype=images.dtype, device=images.device)
    return torch.stack([(weights.sum(dim=1) * xs).sum(dim=1), (weights.sum(dim=2) * ys).sum(dim=1)], dim=1)


def track_anchor(reference: torch.Tensor, place: torch.Tensor, offsets: torch.Tensor,
                 margin: float = TRACK_MARGIN) -> torch.Tensor:
    """(videos, 2): the offset at which each reference frame is put on its track, so that the object it holds
    travels inside the frame.

    `place` (videos, 2), the reference frame's own offset, unless that track would carry the object (its
    salient centre) nearer a border than `margin` of the side: then the nearest offset that keeps it inside
    (or, if none does, the nearest to it). An object the noise put at the right border and asked to move left
    starts there and moves in, instead of leaving the frame. Never beyond the track's own ends: the object is
    not pushed towards a border (docs/video-model.md, Motion steering: that made outlines lumpier)."""
    side = torch.tensor([reference.shape[-1], reference.shape[-2]], dtype=offsets.dtype)
    centre = salient_centre(reference.float()).to(offsets.dtype).cpu()
    low, high = offsets.min(dim=0).values, offsets.max(dim=0).values
    # centre + offsets[f] - anchor stays within [margin, side - margin] for anchor in [lowest, highest]
    lowest, highest = centre + high - side * (1 - margin), centre + low - side * margin
    inside = torch.maximum(torch.minimum(place, highest), lowest)
    return torch.minimum(torch.maximum(inside, low), high)


def travelling_copy(x0: torch.Tensor, offsets: torch.Tensor, frames: int) -> torch.Tensor:
    """A rigidly travelling video per video of `x0` ((videos * frames, C, H, W), frames fastest): its most
    salient frame (the one whose estimate holds the object most clearly), moved back from its place on the
    track (track_anchor) and then to every frame's offset."""
    channels, height, width = x0.shape[1:]
    videos = x0.reshape(-1, frames, channels, height, width)
    chosen = salience(videos.flatten(0, 1).float()).reshape(-1, frames).argmax(dim=1).cpu()
    reference = videos[torch.arange(len(videos)), chosen.to(x0.device)]
    anchor = track_anchor(reference, offsets[chosen], offsets)
    reference = translate(reference, -anchor)
    reference = reference[:, None].expand(-1, frames, -1, -1, -1).reshape(x0.shape)
    return translate(reference, offsets.repeat(videos.shape[0], 1))


def steered(predict: Predictor, alphas_cumprod: torch.Tensor, prediction_type: str, frames: int,
            direction: str, travel: float, weight: float = 1.0, from_timestep: int = 500) -> Predictor:
    """Wrap a first-stage predictor so that, at timesteps >= `from_timestep`, each clean estimate is pulled
    with `weight` onto a copy of its clearest frame that travels `travel` of the side along `direction`."""

    def pull_onto_travelling_copy(x0: torch.Tensor) -> torch.Tensor:
        offsets = frame_offsets(frames, direction, travel, *x0.shape[-2:])
        return x0 + weight * (travelling_copy(x0, offsets, frames) - x0)

    return edits_clean_estimate(predict, alphas_cumprod, prediction_type, pull_onto_travelling_copy, from_timestep)
