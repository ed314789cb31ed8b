"""RAU-Net calls (selfcascade.diffusion.upper_stage.hidiffusion): deep blocks at native size, hooks removed, tuned
residuals fit."""

import numpy as np
import torch

from selfcascade.cascade.pipeline import run
from selfcascade.cascade.request import GenerationRequest
from selfcascade.diffusion.upper_stage import StageContext
from selfcascade.diffusion.upper_stage.hidiffusion import resolution_aware, resolution_aware_call
from selfcascade.models.names import SHIPPED_ADAPTER

ADAPTER = SHIPPED_ADAPTER


def _deep_sizes(unet, latents, **extras):
    """Spatial size of the mid block's input for one UNet call."""
    seen = []
    hook = unet.mid_block.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[-2:])))
    try:
        with torch.no_grad():
            out = unet(latents, torch.tensor(500), encoder_hidden_states=torch.zeros(1, 77, 64), **extras).sample
    finally:
        hook.remove()
    return seen, out


def test_deep_blocks_see_native_size_and_output_keeps_full_size(embedded_model):
    unet = embedded_model.unet
    native = embedded_model.native_latent_size  # (16, 16)
    latents = torch.randn(1, 4, native[0] * 4, native[1] * 2)
    plain_sizes, plain = _deep_sizes(unet, latents)
    with resolution_aware(unet, (4, 2), embedded_model.latent_multiple):
        rau_sizes, out = _deep_sizes(unet, latents)
    native_sizes, _ = _deep_sizes(unet, torch.randn(1, 4, *native))
    assert rau_sizes == native_sizes and plain_sizes != native_sizes
    assert out.shape == latents.shape and torch.isfinite(out).all()
    assert not torch.allclose(out, plain)
    again_sizes, again = _deep_sizes(unet, latents)  # the hooks are gone after the context
    assert again_sizes == plain_sizes and torch.allclose(again, plain)


def test_tuned_residuals_are_resized_to_the_smaller_skips(embedded_model):
    unet = embedded_model.unet
    latents = torch.randn(1, 4, 32, 32)
    sizes = []
    hooks = [block.register_forward_hook(lambda _m, _a, out: sizes.append(out[1])) for block in unet.down_blocks]
    with torch.no_grad():
        unet(latents, torch.tensor(500), encoder_hidden_states=torch.zeros(1, 77, 64))
    for hook in hooks:
        hook.remove()
    residuals = tuple(torch.ones_like(skip) for block in sizes for skip in block)
    conv_in = torch.ones(1, unet.config.block_out_channels[0], 32, 32)
    mid = torch.ones(1, unet.config.block_out_channels[-1], 8, 8)
    with resolution_aware(unet, (2, 2), embedded_model.latent_multiple):
        _, out = _deep_sizes(unet, latents, down_block_additional_residuals=(conv_in, *residuals),
                             mid_block_additional_residual=mid)
    assert out.shape == latents.shape and torch.isfinite(out).all()


def test_below_the_threshold_the_ordinary_call_runs(embedded_model):
    calls = []

    def full(latents, t):
        calls.append(len(embedded_model.unet._forward_pre_hooks))
        return latents

    stage = StageContext((2, 2), (16, 16), 4, 300, embedded_model.unet)
    predict = resolution_aware_call(full, stage, below=60)
    predict(torch.zeros(1, 4, 32, 32), torch.tensor(200))
    predict(torch.zeros(1, 4, 32, 32), torch.tensor(20))
    assert calls[0] == calls[1] + 1  # the RAU context adds the UNet's residual hook only above the threshold


def test_rau_pyramid_runs_every_mode_end_to_end(embedded_model, tmp_path):
    for mode in ("tuning-free", "tuned"):
        result = run(GenerationRequest("a red circle", 256, 256, mode=mode, steps=8, upper="rau-pyramid",
                                       adapter=str(ADAPTER) if mode == "tuned" else None),
                     embedded_model, previews=False)
        assert result.metadata["upper_stage"] == ["-", "hidiffusion-pyramid", "hidiffusion-pyramid"]
        assert np.isfinite(np.asarray(result.image, dtype=np.float32)).all()


def test_below_a_4x_target_rau_pyramid_is_the_frequency_pyramid(embedded_model):
    """Measured: RAU-Net pays at 4x and costs at 2x (UpperStageSettings.rau_min_target_scale)."""
    results = [run(GenerationRequest("a red circle", 128, 128, steps=6, upper=name, seed=3), embedded_model,
                   previews=False) for name in ("rau-pyramid", "frequency-pyramid")]
    assert np.array_equal(*(np.asarray(result.image) for result in results))
    assert results[0].metadata["upper_stage"] == ["-", "frequency-pyramid"]  # the metadata says what ran
    at_4x = [np.asarray(run(GenerationRequest("a red circle", 256, 256, steps=6, upper=name, seed=3),
                            embedded_model, previews=False).image) for name in ("rau-pyramid", "frequency-pyramid")]
    assert not np.array_equal(*at_4x)
