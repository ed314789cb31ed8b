"""ScaleCrafter (He et al., arXiv 2310.07702, Sec. 3.2): the UNet's ResNet 3x3 convolutions re-dilated by the
stage scale; FouriScale (Huang et al., arXiv 2403.12963) puts a low-pass in front of each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from selfcascade.diffusion.prediction import Predictor
from selfcascade.diffusion.upper_stage.context import Scale, StageContext
from selfcascade.diffusion.upper_stage.views import gaussian_blur


def _conv_layers(unet: nn.Module) -> Iterator[nn.Conv2d]:
    """The 3x3 convolutions of the UNet's ResNet blocks (ScaleCrafter re-dilates these, not conv_in/out)."""
    for name, module in unet.named_modules():
        if (isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) and module.stride == (1, 1)
                and ".resnets." in f".{name}"):
            yield module


@contextmanager
def redilated_convolutions(unet: nn.Module, scale: Scale, lowpass: bool = False):
    """Set dilation = padding = s on the UNet's ResNet 3x3 convs; FouriScale adds a Gaussian low-pass
    (sigma = s/2) on each such conv's input so the dilated kernel does not alias."""
    layers = list(_conv_layers(unet))
    saved = [(layer.dilation, layer.padding) for layer in layers]
    hooks = []
    for layer in layers:
        layer.dilation, layer.padding = scale, scale
        if lowpass:
            hooks.append(layer.register_forward_pre_hook(
                lambda _m, args: (gaussian_blur(args[0], max(scale) / 2),) + tuple(args[1:])))
    try:
        yield
    finally:
        for layer, (dilation, padding) in zip(layers, saved):
            layer.dilation, layer.padding = dilation, padding
        for hook in hooks:
            hook.remove()


def redilated(full: Predictor, native: Predictor, stage: StageContext, lowpass: bool = False) -> Predictor:
    """ScaleCrafter: the full-size prediction with the ResNet convolutions dilated by the stage scale."""

    def predict(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with redilated_convolutions(stage.unet, stage.scale, lowpass):
            return full(latents, t)

    return predict


def fouriscale(full: Predictor, native: Predictor, stage: StageContext) -> Predictor:
    """FouriScale: re-dilated convolutions with a low-pass filter in front of each."""
    return redilated(full, native, stage, lowpass=True)
