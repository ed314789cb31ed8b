"""Text-to-video families (AnimateDiff's UNetMotionModel, ModelScope's UNet3DConditionModel) behind the one
model interface, with frames folded into the batch.

The cascade acts on space, per frame (docs/video.md): the bilinear pivot resize, the upper-stage
strategies' sub-lattices and blurs, pivot anchoring and the upsamplers are all spatial. So a video model shows
the cascade latents of shape (videos * frames, C, H, W), frames the fastest axis, and every spatial operation
written for images applies per frame unchanged. Only the UNet call unfolds them to the (B, C, F, H, W) the
temporal layers need, and folds the result back. The frame count is a property of one request: `for_frames`
returns a light copy of the loaded model that knows it, so the model in memory is shared and never mutated.

Batch-changing wrappers keep frames fastest: sub-lattices and windows are view-major
(selfcascade.diffusion.upper_stage),
classifier-free guidance concatenates whole batches, so any batch the UNet gets is a whole number of videos.
"""

from __future__ import annotations

import copy

import torch
from PIL import Image

from selfcascade.errors import InvalidRequest
from selfcascade.models.base import Conditioning, DiffusionModel
from selfcascade.models.motion_text import attach_saved, motion_modules
from selfcascade.models.names import public_name


class VideoModel(DiffusionModel):
    """A text-to-video pipeline whose UNet takes (B, C, F, H, W); temporal layers frozen like the rest."""

    is_video = True
    frames = 16  # set per request by for_frames

    def for_frames(self, frames: int) -> "VideoModel":
        """This model for one request of `frames` frames (a shallow copy: weights are shared)."""
        view = copy.copy(self)
        view.frames = int(frames)
        return view

    def latent_shape(self, size, batch: int = 1) -> tuple[int, ...]:
        """Folded: (batch * frames, C, h, w)."""
        return (batch * self.frames, *super().latent_shape(size, 1)[1:])

    def unfold(self, latents: torch.Tensor) -> torch.Tensor:
        """(videos * F, C, H, W) -> (videos, C, F, H, W)."""
        count, channels, height, width = latents.shape
        if count % self.frames:
            raise ValueError(f"a batch of {count} latents is not a whole number of {self.frames}-frame videos")
        return latents.reshape(count // self.frames, self.frames, channels, height, width).permute(0, 2, 1, 3, 4)

    @staticmethod
    def fold(videos: torch.Tensor) -> torch.Tensor:
        """(videos, C, F, H, W) -> (videos * F, C, H, W), frames fastest."""
        count, channels, frames, height, width = videos.shape
        return videos.permute(0, 2, 1, 3, 4).reshape(count * frames, channels, height, width)

    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str, guided: bool) -> Conditioning:
        positive, negative = self.pipeline.encode_prompt(
            prompt, self.device, 1, guided, negative_prompt=negative_prompt or None
        )
        return Conditioning(positive=positive, negative=negative if guided else None)

    def embeddings(self, conditioning: Conditioning) -> torch.Tensor:
        """One embedding per folded latent, laid out [negative; positive] like the batch."""
        if conditioning.guided:
            return torch.cat([conditioning.negative, conditioning.positive])
        return conditioning.positive

    def predict_noise(self, latents, timestep, conditioning, **unet_extras):
        if torch.is_tensor(timestep) and timestep.ndim == 1 and self.frames > 1 and len(timestep) == len(latents):
            timestep = timestep[:: self.frames]  # one per folded frame (training) -> one per video, as the UNet takes
        noise = self.unet(self.unfold(latents), timestep, encoder_hidden_states=self.unet_embeddings(
            self.embeddings(conditioning), latents.shape[0]), return_dict=False, **unet_extras)[0]
        return self.fold(noise)

    def unet_embeddings(self, per_latent: torch.Tensor, count: int) -> torch.Tensor:
        """What the UNet's encoder_hidden_states expects, from one embedding per folded latent."""
        return per_latent

    @staticmethod
    def strip(frames: list[Image.Image], most: int = 8) -> Image.Image:
        """Up to `most` evenly spaced frames side by side: a still preview of a video."""
        step = max(1, -(-len(frames) // most))
        chosen = frames[::step]
        width, height = chosen[0].size
        sheet = Image.new("RGB", (width * len(chosen), height), "white")
        for index, frame in enumerate(chosen):
            sheet.paste(frame, (index * width, 0))
        return sheet


class AnimateDiffModel(VideoModel):
    """AnimateDiff (Guo et al. 2023): an SD-1.5-family UNet with MotionAdapter layers (UNetMotionModel).

    Its spatial attention wants one text embedding per frame, (B * F, seq, dim), as AnimateDiffPipeline
    repeats it; the folded layout already is exactly that."""

    family = "AnimateDiff"

    def __init__(self, pipeline, name: str, settings: tuple = ()):
        super().__init__(pipeline, name, settings)
        self.frames = 16
        contiguous_motion_inputs(self.unet)
        self.motion_text = attach_saved(self.unet, name)  # the embedded model's text-conditioned motion, if any


def _contiguous(_module, args, kwargs):
    return (tuple(a.contiguous() if torch.is_tensor(a) else a for a in args),
            {key: value.contiguous() if torch.is_tensor(value) else value for key, value in kwargs.items()})


def contiguous_motion_inputs(unet) -> int:
    """Make the motion modules' proj_in input contiguous: diffusers hands it a permuted view, and the matmul
    of that view runs as a batched GEMM over an expanded weight that took 6 s instead of 1 ms per call on 2
    busy CPU cores (measured: 29 s -> 0.4 s per UNet call of the tiny test model). Returns the hooks added."""
    count = 0
    for module in motion_modules(unet):
        if not getattr(module.proj_in, "_selfcascade_contiguous", False):
            module.proj_in.register_forward_pre_hook(_contiguous, with_kwargs=True)
            module.proj_in._selfcascade_contiguous = True
            count += 1
    return count


class TextToVideoModel(VideoModel):
    """ModelScope text-to-video (UNet3DConditionModel, TextToVideoSDPipeline; zeroscope): the UNet repeats
    the text embedding over frames itself, so it gets one per video, (B, seq, dim)."""

    family = "ModelScope text-to-video"

    def __init__(self, pipeline, name: str, settings: tuple = ()):
        super().__init__(pipeline, name, settings)
        self.frames = 16

    def unet_embeddings(self, per_latent: torch.Tensor, count: int) -> torch.Tensor:
        return per_latent[:: self.frames]


def check_video_model(model: DiffusionModel, wanted_video: bool) -> None:
    """Refuse an image model for a video request and the reverse, in one sentence."""
    is_video = getattr(model, "is_video", False)
    if wanted_video and not is_video:
        raise InvalidRequest(f"{public_name(model.name)} is an image model: a video needs a text-to-video model "
                             "(AnimateDiff, ModelScope/zeroscope or the embedded shapes-video)")
    if is_video and not wanted_video:
        raise InvalidRequest(f"{public_name(model.name)} is a video model: make videos with the Video tab or "
                             "`python -m selfcascade video`")
