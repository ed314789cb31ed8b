"""Text-conditioned motion modules: the prompt reaches AnimateDiff's temporal layers directly.

Status: tried on the embedded video model and not shipped (the trained model did not follow the direction
better; docs/video-model.md). Kept so the run can be repeated and extended: the trainer's
`--text-conditioning` builds it, and the loader attaches one to any AnimateDiff folder that has `motion_text/`.

AnimateDiff's motion modules (temporal self-attention per pixel) have no text input: the prompt reaches them
only through the frozen spatial layers' features. For the embedded shapes-video model that channel is too weak
to carry a direction: "a red circle moving right" and "... moving down" from one seed drew the same track, and
training the spatial cross-attention's keys and values with the motion modules did not change that (docs/video.md,
The embedded video model). So a motion model may carry a small `MotionTextConditioning` beside its weights:
one vector per motion module computed from the prompt, added to the module's normalised input (after its
GroupNorm, before the temporal attention), the way a time embedding enters a ResNet block. The residual path
and the spatial layers are untouched, and the last layers start at zero, so a freshly attached conditioning
changes nothing until it is trained.

The prompt vector pools the text encoder's hidden states over the prompt's positions with learned attention
weights, so it is computed from the `encoder_hidden_states` the UNet is already given: every caller (our
sampling loop, training, diffusers' AnimateDiffPipeline) works unchanged. It is saved as a diffusers model in
the pipeline folder's `motion_text/` subfolder, which `DiffusionPipeline.from_pretrained` ignores;
`attach_saved` adds it after loading. Hub AnimateDiff models have no such folder and run as before.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config

SUBFOLDER = "motion_text"
ATTRIBUTE = "motion_text_conditioning"  # its name as a sub-module of the UNet (moved with it by .to())


def motion_modules(unet) -> list[torch.nn.Module]:
    """The UNet's AnimateDiff temporal transformers, in named order (the order the conditioning's heads use)."""
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    return [module for _, module in unet.named_modules() if isinstance(module, AnimateDiffTransformer3D)]


class MotionTextConditioning(ModelMixin, ConfigMixin):
    """prompt vector -> standardised -> Linear -> SiLU -> one zero-initialised Linear per motion module.

    The standardisation (a mean and a scale per dimension, fixed before training by `standardise_on` over the
    training captions) puts every dimension on one scale. It does not make the direction loud: measured on the
    shipped text encoder, "moving right" and "moving left" stay 0.1-0.4 standard units apart where a colour
    word moves the vector by about 8, which is why the trainer can also train the text encoder and add a
    direction-naming loss (selfcascade.shapes.train_motion)."""

    @register_to_config
    def __init__(self, text_dim: int, module_channels: tuple[int, ...], hidden_dim: int = 64):
        super().__init__()
        self.focus = torch.nn.Linear(text_dim, 1)  # attention pooling over the prompt's positions
        torch.nn.init.zeros_(self.focus.weight), torch.nn.init.zeros_(self.focus.bias)  # starts as their mean
        self.register_buffer("prompt_mean", torch.zeros(text_dim))
        self.register_buffer("prompt_scale", torch.ones(text_dim))
        self.trunk = torch.nn.Sequential(torch.nn.Linear(text_dim, hidden_dim), torch.nn.SiLU())
        self.heads = torch.nn.ModuleList(torch.nn.Linear(hidden_dim, channels) for channels in module_channels)
        for head in self.heads:
            torch.nn.init.zeros_(head.weight), torch.nn.init.zeros_(head.bias)
        self._prompt_vectors: torch.Tensor | None = None

    @classmethod
    def for_unet(cls, unet, text_dim: int) -> "MotionTextConditioning":
        return cls(text_dim, tuple(module.in_channels for module in motion_modules(unet)))

    def prompt_vectors(self, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        """What the conditioning reads of each prompt: its positions' hidden states, pooled with learned
        attention weights (uniform at first). A direction word changes its own position's state by about its
        whole norm, but the later positions, which read the whole prompt under CLIP's causal mask, by 1-10%."""
        states = encoder_hidden_states.to(self.dtype)
        weights = torch.softmax(self.focus(states), dim=1)  # (batch, positions, 1)
        return (weights * states).sum(1)

    @torch.no_grad()
    def standardise_on(self, encoder_hidden_states: torch.Tensor) -> None:
        """Fix the per-dimension mean and scale from a batch of prompts' hidden states."""
        vectors = self.prompt_vectors(encoder_hidden_states)
        self.prompt_mean.copy_(vectors.mean(0))
        spread = vectors.std(0)
        self.prompt_scale.copy_(spread.clamp(min=1e-2 * float(spread.mean())))  # near-constant dimensions

    def remember(self, encoder_hidden_states: torch.Tensor | None) -> None:
        """Keep the prompt vectors of the UNet call about to run (one per batch row)."""
        if encoder_hidden_states is None:
            self._prompt_vectors = None
            return
        vectors = self.prompt_vectors(encoder_hidden_states)
        self._prompt_vectors = self.trunk((vectors - self.prompt_mean) / self.prompt_scale)

    @property
    def last_prompt_vectors(self) -> torch.Tensor | None:
        """The trunk's output for the last UNet call's batch rows (for training losses on it)."""
        return self._prompt_vectors

    def shift(self, index: int, normalised: torch.Tensor) -> torch.Tensor:
        """Motion module `index`'s normalised input (videos, C, F, H, W) plus its prompt vector."""
        vectors = self._prompt_vectors
        if vectors is None:
            return normalised
        videos, frames = normalised.shape[0], normalised.shape[2]
        if vectors.shape[0] == videos * frames:  # AnimateDiff gives one embedding per frame: take each video's
            vectors = vectors[::frames]
        if vectors.shape[0] != videos:
            raise ValueError(f"{vectors.shape[0]} prompt vectors for {videos} videos")
        return normalised + self.heads[index](vectors).to(normalised.dtype)[:, :, None, None, None]


def attach(unet, conditioning: MotionTextConditioning) -> MotionTextConditioning:
    """Hook `conditioning` into `unet` (a UNetMotionModel) and hold it as its sub-module."""
    modules = motion_modules(unet)
    if len(modules) != len(conditioning.heads):
        raise ValueError(f"the motion text conditioning has {len(conditioning.heads)} heads for "
                         f"{len(modules)} motion modules")
    conditioning.to(unet.device)
    if conditioning.dtype != unet.dtype:  # (a float32 -> float32 .to(dtype) makes diffusers warn)
        conditioning.to(unet.dtype)
    unet.add_module(ATTRIBUTE, conditioning)

    def remember(_unet, args, kwargs):
        states = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
        conditioning.remember(states)

    unet.register_forward_pre_hook(remember, with_kwargs=True)
    for index, module in enumerate(modules):
        module.norm.register_forward_hook(lambda _norm, _inputs, output, index=index: conditioning.shift(index, output))
    return conditioning


def detach_for_saving(unet) -> MotionTextConditioning | None:
    """Take the conditioning out of the UNet's sub-modules (so the UNet saves as a plain UNetMotionModel)."""
    return unet._modules.pop(ATTRIBUTE, None)


def attach_saved(unet, folder: str | Path) -> MotionTextConditioning | None:
    """Attach the conditioning saved in `folder`/motion_text, if the folder has one."""
    location = Path(folder).expanduser() / SUBFOLDER
    if not (location / "config.json").is_file():
        return None
    return attach(unet, MotionTextConditioning.from_pretrained(str(location), use_safetensors=True))
