"""Pivot consensus: the mirrored averaging, where it runs, and how a user sets it."""

import pytest
import torch
from diffusers import DDPMScheduler

from selfcascade.cascade.pipeline import StageDone, generate, run
from selfcascade.cascade.request import GenerationRequest, VideoRequest
from selfcascade.diffusion.consensus import EMBEDDED_CONSENSUS, MAX_CONSENSUS, consensus_latents
from selfcascade.errors import InvalidRequest


def constant_estimate_predictor(clean: torch.Tensor, scheduler):
    """A noise predictor whose clean estimate is `clean`, whatever the latents (epsilon parameterisation)."""

    def predict(latents, timestep):
        a = scheduler.alphas_cumprod[int(timestep)]
        views = clean.repeat(latents.shape[0] // clean.shape[0], 1, 1, 1)  # views of one batch share a call
        return (latents - a.sqrt() * views) / (1 - a).sqrt()

    return predict


def test_consensus_averages_estimates_and_mirrors_every_other_view_back():
    scheduler = DDPMScheduler()
    generator = torch.Generator().manual_seed(0)
    pivot = torch.randn(1, 4, 8, 8, generator=generator)
    lopsided = torch.zeros(1, 4, 8, 8)
    lopsided[..., :3] = 1.0  # an estimate that is not its own mirror image
    predict = constant_estimate_predictor(lopsided, scheduler)
    # a mirrored view's estimate is mirrored back: views 0 and 1 give lopsided and its mirror image
    two = consensus_latents(pivot, predict, scheduler, generator, views=2)
    assert torch.allclose(two, (lopsided + torch.flip(lopsided, dims=[-1])) / 2, atol=1e-4)
    three = consensus_latents(pivot, predict, scheduler, generator, views=3)
    assert torch.allclose(three, (2 * lopsided + torch.flip(lopsided, dims=[-1])) / 3, atol=1e-4)
    assert consensus_latents(pivot, predict, scheduler, generator, views=1) is pivot  # 0 or 1: off


def test_consensus_of_a_model_that_sees_the_truth_is_the_truth():
    """A predictor that knows the clean sample (eps = the noise actually added) gives it back exactly: the
    averaging moves nothing that every estimate agrees on."""
    scheduler = DDPMScheduler()
    truth = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    symmetric = (truth + torch.flip(truth, dims=[-1])) / 2
    predict = constant_estimate_predictor(symmetric, scheduler)
    result = consensus_latents(symmetric, predict, scheduler, torch.Generator().manual_seed(2), views=4)
    assert torch.allclose(result, symmetric, atol=1e-4)


def test_the_embedded_model_averages_its_first_stage_and_records_it(embedded_model):
    assert embedded_model.default_consensus == EMBEDDED_CONSENSUS
    previews = {}
    for consensus in (0, None):
        request = GenerationRequest("a red circle", 128, 128, steps=6, seed=3, pivot_up="pixel",
                                    consensus=consensus)
        events = list(generate(request, embedded_model))
        previews[consensus] = next(e for e in events if isinstance(e, StageDone)).preview
        assert events[-1].metadata["pivot_consensus"] == (0 if consensus == 0 else EMBEDDED_CONSENSUS)
    # the first stage's pivot is the consensus, not the sample itself
    assert previews[0].tobytes() != previews[None].tobytes()
    # one stage (nothing to enlarge) and the direct baseline draw no consensus: the sample is the result
    single = run(GenerationRequest("a red circle", 64, 64, steps=6, seed=3, consensus=8), embedded_model)
    plain = run(GenerationRequest("a red circle", 64, 64, steps=6, seed=3, consensus=0), embedded_model)
    assert single.metadata["pivot_consensus"] == 0 and single.image.tobytes() == plain.image.tobytes()
    direct = run(GenerationRequest("a red circle", 128, 128, mode="direct", steps=2), embedded_model)
    assert direct.metadata["pivot_consensus"] == 0


def test_videos_hand_on_their_first_stage_as_sampled(capsys):
    from selfcascade.models.loader import load_model
    from selfcascade.ui.cli import main

    request = VideoRequest("a red circle moving right", 128, 128, frames=2, steps=2, consensus=4)
    assert run(request, load_model("shapes-video"), previews=False).metadata["pivot_consensus"] == 0
    assert main(["video", "--prompt", "a red circle moving right", "--size", "128x128", "--consensus", "4",
                 "--out", "x.mp4"]) == 2
    assert "--consensus is for images" in capsys.readouterr().err


@pytest.mark.parametrize("value", [-1, MAX_CONSENSUS + 1, 2.5, True, "4"])
def test_a_bad_consensus_is_refused_with_its_range(value):
    with pytest.raises(InvalidRequest, match="pivot consensus must be a whole number"):
        GenerationRequest("a red circle", 128, 128, consensus=value).check()


def test_cli_and_presets_set_the_consensus(capsys):
    from selfcascade.cascade.presets import request_defaults
    from selfcascade.ui.cli import _request, build_parser, main

    assert request_defaults(None)["consensus"] == EMBEDDED_CONSENSUS  # the embedded model's presets
    assert request_defaults("some-org/some-hub-model")["consensus"] == 0  # unmeasured on hub models: off
    assert "consensus" not in request_defaults("shapes-video")  # images only
    args = build_parser().parse_args(["generate", "--prompt", "a red circle", "--size", "256x256",
                                      "--consensus", "8", "--out", "x.png"])
    assert _request(args, GenerationRequest).consensus == 8
    assert main(["generate", "--prompt", "a red circle", "--size", "256x256", "--consensus", "99",
                 "--out", "x.png"]) == 2
    assert "pivot consensus must be a whole number" in capsys.readouterr().err


def test_the_app_form_carries_the_consensus():
    from selfcascade.ui import handlers

    values = dict(zip(handlers.FORM, handlers.preset_values(handlers.preset_names()[0])))
    assert values["consensus"] == EMBEDDED_CONSENSUS  # the embedded model's preset
    form = [values[key] for key in handlers.FORM[:-2]]
    request = handlers.build_request(*form, 5, pivot_up="pixel", consensus=2)
    assert request.consensus == 2 and request.seed == 5
    with pytest.raises(InvalidRequest, match="pivot consensus must be a whole number"):
        handlers.build_request(*form, 5, consensus=MAX_CONSENSUS + 1)


@pytest.mark.parametrize("family", ["sd-epsilon", "sd-v", "sdxl"])
def test_hub_model_families_run_a_consensus_when_asked(tmp_path, family):
    """Off by default on hub models (not measured there), and it works on each family when a user asks."""
    from selfcascade.models.loader import load_model

    from .tiny_components import save_tiny_sdxl, save_tiny_stable_diffusion

    folder = (save_tiny_sdxl(tmp_path) if family == "sdxl" else
              save_tiny_stable_diffusion(tmp_path, "v_prediction" if family == "sd-v" else "epsilon"))
    model = load_model(str(folder))
    assert model.default_consensus == 0
    request = GenerationRequest("a blue square", 128, 128, steps=3, strength=0.7, guidance=5.0, consensus=2)
    result = run(request, model, previews=False)
    assert result.metadata["pivot_consensus"] == 2 and result.image.size == (128, 128)
    assert run(GenerationRequest("a blue square", 128, 128, steps=3), model).metadata["pivot_consensus"] == 0
