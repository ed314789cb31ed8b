"""Time-aware feature upsamplers phi_n (paper Sec. 3.2, Eq. 6): h^_{n,t} = h_{n,t} + phi_n(h_{n,0}^{r-1}, t).

The frozen UNet's encoder also runs on the clean pivot at the small size; for each of N resolution levels the
last skip feature (the encoder output the decoder concatenates) is upsampled 2x bilinearly, refined by two
tiny residual blocks, modulated by the timestep, and added to the same skip of the high-resolution pass
through the UNet's own `down_block_additional_residuals` input (no fork of diffusers' UNet). Eq. 6 takes the
clean pivot's features (t = 0), so everything but the timestep modulation is computed once per stage.

Tiny by design (the paper counts 0.002M parameters for N = 4): the convolutions are *channel-shared*, the
same few filters run over every feature channel, so their size does not grow with the UNet's width; a
per-channel output gain, zero-initialised, makes an untrained adapter reproduce the tuning-free result
exactly and lets training start from it.

Design "mixed" (the default for new adapters) lets the convolutions combine the channels instead: lift C -> width,
two residual blocks, project width -> C per level; 30,590 parameters on the embedded model at width 8 instead of
2,365. The extra capacity is what lets the restore objective (selfcascade.training.loop) correct outlines: measured
in docs/results.md, "Tuned mode".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_timestep_embedding
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from selfcascade.adapters.designs import DESIGNS


class _EncoderDone(Exception):
    """Raised by a hook to stop the UNet after its encoder: the pivot pass needs only the skip features."""


class SharedResBlock(nn.Module):
    """x + conv(silu(conv(silu(x)))) on channel-shared feature maps of `width` filters."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class LevelUpsampler(nn.Module):
    """phi_n for one level: bilinear x2, two residual blocks shared by channels, then the timestep.

    phi_n(h, t) = gain * (trunk(h) * (1 + a(t)) + b(t)), with a, b from the timestep embedding. The trunk
    (up-sampling and residual blocks) does not depend on t, and h is the clean pivot's feature (Eq. 6,
    h_{n,0}), so the trunk runs once per stage; each step costs one multiply-add at the skip's size.
    """

    def __init__(self, channels: int, width: int, time_dim: int, design: str = "shared"):
        super().__init__()
        # "shared": the same filters over every channel (tiny, the paper's budget); "mixed": convolutions
        # across the channels (more parameters; they can combine features, e.g. to redraw an outline).
        self.shared = design == "shared"
        inputs = 1 if self.shared else channels
        self.lift = nn.Conv2d(inputs, width, 3, padding=1)
        self.blocks = nn.ModuleList([SharedResBlock(width) for _ in range(2)])
        self.project = nn.Conv2d(width, inputs, 3, padding=1)
        self.time = nn.Linear(time_dim, 2)  # (a, b): how strongly, and with what offset, at this t
        self.gain = nn.Parameter(torch.zeros(channels))  # zero: starts as the tuning-free cascade

    def trunk(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The t-independent part: bilinear x2 and the shared residual blocks, (B, C, *size)."""
        batch, channels = features.shape[:2]
        up = F.interpolate(features, size=size, mode="bilinear", align_corners=False)
        x = self.lift(up.reshape(batch * channels, 1, *size) if self.shared else up)
        for block in self.blocks:
            x = block(x)
        return self.project(x).reshape(batch, channels, *size)

    def modulate(self, trunk: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """The per-step part: scale and shift by the timestep, then the per-channel gain."""
        scale, shift = self.time(time)[:, :, None, None].unbind(1)
        return (trunk * (1 + scale[:, None]) + shift[:, None]) * self.gain[None, :, None, None]

    def forward(self, features: torch.Tensor, time: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.modulate(self.trunk(features, size), time)


class FeatureUpsamplers(ModelMixin, ConfigMixin):
    """The N = len(skip_indices) upsamplers of one base model, saved as safetensors + config.json.

    `skip_channels` and `skip_levels` describe every UNet skip feature (conv_in, then each down-block
    resnet and down-sampler output): its channels and resolution level (0 = full latent size, 1 = half, ...);
    `skip_indices` pick the last skip of each level, the ones the upsamplers refine. `time_conditioning`
    names the design: "output" (this one); adapters of the earlier per-step design ("film") are refused.
    `base_family`, `latent_channels` and `training` (steps, final loss, timesteps, date, ...) record what the
    adapter was trained for (selfcascade.adapters.files checks the first two on loading).
    """

    @register_to_config
    def __init__(self, skip_channels: tuple[int, ...] = (), skip_levels: tuple[int, ...] = (),
                 skip_indices: tuple[int, ...] = (), width: int = 4, time_dim: int = 32, base_model: str = "",
                 unet_fingerprint: str = "", stage_size: tuple[int, ...] = (), scale: int = 2,
                 stop_below_timestep: int = 0, time_conditioning: str = "film", base_family: str = "",
                 latent_channels: int = 0, training: dict | None = None, design: str = "shared"):
        super().__init__()
        if design not in DESIGNS:
            raise ValueError(f"unknown upsampler design {design!r}; known: {', '.join(DESIGNS)}")
        self.levels = nn.ModuleList([LevelUpsampler(skip_channels[i], width, time_dim, design)
                                     for i in skip_indices])

    def time_embedding(self, timestep: torch.Tensor, batch: int) -> torch.Tensor:
        steps = timestep.reshape(-1).float().expand(batch) if timestep.numel() == 1 else timestep.float()
        return get_timestep_embedding(steps, self.config.time_dim, flip_sin_to_cos=True, downscale_freq_shift=0)

    def skip_sizes(self, latent_size: tuple[int, int]) -> list[tuple[int, int]]:
        """Spatial size of every skip feature of a UNet pass on latents of `latent_size` (h, w)."""
        return [(-(-latent_size[0] // 2**level), -(-latent_size[1] // 2**level)) for level in self.config.skip_levels]

    def prepare(self, pivot_skips: list[torch.Tensor], latent_size: tuple[int, int]) -> list[torch.Tensor]:
        """The trunks of every level for one stage (the part of phi that does not depend on t)."""
        sizes = self.skip_sizes(latent_size)
        return [level.trunk(pivot_skips[i], sizes[i]) for level, i in zip(self.levels, self.config.skip_indices)]

    def residuals_from(self, trunks: list[torch.Tensor], timestep: torch.Tensor,
                       latent_size: tuple[int, int]) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """UNet inputs for one step: (down_block_additional_residuals, mid_block_additional_residual)."""
        target_sizes = self.skip_sizes(latent_size)
        reference = trunks[0]  # batch, dtype and device of this stage; channels come from the config
        batch = reference.shape[0]
        time = self.time_embedding(timestep.to(reference.device), batch).to(reference.dtype)
        residuals = [torch.zeros(batch, channels, *size, dtype=reference.dtype, device=reference.device)
                     for channels, size in zip(self.config.skip_channels, target_sizes)]
        for level, index, trunk in zip(self.levels, self.config.skip_indices, trunks):
            residuals[index] = level.modulate(trunk, time)
        # A mid residual (zeros) makes diffusers add the others to the skips (its ControlNet path).
        mid = torch.zeros(batch, self.config.skip_channels[-1], *target_sizes[-1], dtype=reference.dtype,
                          device=reference.device)
        return tuple(residuals), mid

    def residuals(self, pivot_skips: list[torch.Tensor | None], timestep: torch.Tensor,
                  latent_size: tuple[int, int]) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Both parts at once (training: a fresh pivot every step). Only the skips at `skip_indices` are
        read: the others may be None (training caches only those)."""
        return self.residuals_from(self.prepare(pivot_skips, latent_size), timestep, latent_size)

    def forward(self, pivot_skips: list[torch.Tensor | None], timestep: torch.Tensor, latent_size: tuple[int, int],
                unet_dtype: torch.dtype | None = None) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """residuals() in the upsamplers' own dtype, returned in the UNet's (training calls this through
        forward so that DistributedDataParallel all-reduces the gradients)."""
        own = self.dtype
        features = [None if skip is None else skip.to(own) for skip in pivot_skips]
        residuals, mid = self.residuals(features, timestep, latent_size)
        if unet_dtype is None or unet_dtype == own:
            return residuals, mid
        return tuple(r.to(unet_dtype) for r in residuals), mid.to(unet_dtype)


def skip_layout(unet) -> tuple[list[int], list[int], list[int]]:
    """Channels and level of every UNet skip feature, and the index of the last skip of each level."""
    channels, levels = [unet.config.block_out_channels[0]], [0]
    for index, block in enumerate(unet.down_blocks):
        out = unet.config.block_out_channels[index]
        channels += [out] * len(block.resnets)
        levels += [index] * len(block.resnets)
        if block.downsamplers:
            channels.append(out)
            levels.append(index + 1)
    last_of_level = [max(i for i, level in enumerate(levels) if level == n) for n in sorted(set(levels))]
    return channels, levels, last_of_level


def new_upsamplers(unet, base_model: str, width: int = 4, design: str = "shared") -> FeatureUpsamplers:
    channels, levels, indices = skip_layout(unet)
    return FeatureUpsamplers(skip_channels=tuple(channels), skip_levels=tuple(levels), skip_indices=tuple(indices),
                             width=width, base_model=base_model, time_conditioning="output", design=design)


def encoder_skips(model, latents: torch.Tensor, timestep: torch.Tensor, conditioning) -> list[torch.Tensor]:
    """The UNet's skip features for `latents` (the clean pivot), stopping before the mid block."""
    skips: list[torch.Tensor] = []
    unet = model.unet
    hooks = [unet.conv_in.register_forward_hook(lambda _m, _i, out: skips.append(out))]
    for block in unet.down_blocks:
        hooks.append(block.register_forward_hook(lambda _m, _i, out: skips.extend(out[1])))

    def stop(_module, _inputs):
        raise _EncoderDone

    hooks.append(unet.mid_block.register_forward_pre_hook(stop))
    try:
        model.predict_noise(latents, timestep, conditioning)
    except _EncoderDone:
        pass
    finally:
        for hook in hooks:
            hook.remove()
    return skips
