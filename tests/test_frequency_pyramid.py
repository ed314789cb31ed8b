"""The frequency pyramid (selfcascade.diffusion.upper_stage.frequency_pyramid): its views and its band algebra."""

from __future__ import annotations

import pytest
import torch

from selfcascade.cascade.request import GenerationRequest
from selfcascade.diffusion.upper_stage import (
    StageContext,
    UpperStageSettings,
    frequency_pyramid,
    gaussian_blur,
    pyramid_scales,
)
from selfcascade.errors import InvalidRequest

PYRAMID_SIGMA = UpperStageSettings().pyramid_sigma


def test_views_are_octaves_below_the_stage_scale_then_the_stage_scale():
    assert pyramid_scales((2, 2)) == [(2, 2)]
    assert pyramid_scales((4, 4)) == [(2, 2), (4, 4)]
    assert pyramid_scales((8, 8)) == [(2, 2), (4, 4), (8, 8)]
    assert pyramid_scales((3, 3)) == [(2, 2), (3, 3)]
    assert pyramid_scales((2, 4)) == [(2, 2), (2, 4)]


def _stage(scale):
    return StageContext(scale, (8, 8), 1, 300)


def test_bands_add_up_to_the_prediction_when_every_view_agrees():
    """A pointwise predictor gives the same noise from every view: the bands must telescope back to it."""
    latents = torch.randn(1, 4, 32, 32)
    pointwise = lambda x, t: torch.tanh(x) * 0.7  # noqa: E731
    predict = frequency_pyramid(pointwise, pointwise, _stage((4, 4)))
    for _ in range(3):  # fresh and reused (refreshed in turn) views
        assert torch.allclose(predict(latents, torch.tensor([300])), pointwise(latents, None), atol=1e-5)


def test_each_band_comes_from_its_own_view():
    """Full view only (dilated views silent): exactly the band above the first edge, sigma = 2h."""
    latents = torch.randn(1, 4, 32, 32)
    full = lambda x, t: x  # noqa: E731
    silent = lambda x, t: torch.zeros_like(x)  # noqa: E731
    high = frequency_pyramid(full, silent, _stage((4, 4)))(latents, torch.tensor([300]))
    assert torch.allclose(high, latents - gaussian_blur(latents, 2 * PYRAMID_SIGMA), atol=1e-5)
    low = frequency_pyramid(silent, full, _stage((4, 4)))(latents, torch.tensor([300]))
    assert torch.allclose(low + high, latents, atol=1e-5)  # the dilated views hold everything else


def test_the_band_edge_comes_with_the_stage_settings_not_a_module_global():
    """A request's tuning reaches the strategy through StageContext.settings (what benchmarks vary)."""
    latents = torch.randn(1, 4, 32, 32)
    full = lambda x, t: x  # noqa: E731
    silent = lambda x, t: torch.zeros_like(x)  # noqa: E731
    settings = GenerationRequest("", 256, 256, tuning={"pyramid_sigma": 0.35}).upper_stage_settings()
    stage = StageContext((4, 4), (8, 8), 1, 300, settings=settings)
    high = frequency_pyramid(full, silent, stage)(latents, torch.tensor([300]))
    assert torch.allclose(high, latents - gaussian_blur(latents, 2 * 0.35), atol=1e-5)
    assert UpperStageSettings().pyramid_sigma == PYRAMID_SIGMA == 0.5  # the defaults are untouched


@pytest.mark.parametrize("tuning", [{"pyramid": 1.0}, {"pyramid_sigma": float("nan")}, {"pyramid_sigma": -1},
                                    ["pyramid_sigma"]])
def test_unknown_or_bad_tuning_is_refused(tuning):
    with pytest.raises(InvalidRequest, match="tuning"):
        GenerationRequest("", 256, 256, tuning=tuning).check()
