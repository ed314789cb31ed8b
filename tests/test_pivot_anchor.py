"""Pivot anchoring (ILVR on the clean estimate): the algebra, and its effect on the embedded model."""

import pytest
import torch

from selfcascade.cascade import pipeline as cascade
from selfcascade.cascade.pipeline import StageDone, generate, run
from selfcascade.cascade.request import GenerationRequest
from selfcascade.diffusion.anchor import ANCHOR_SIGMA, anchored
from selfcascade.diffusion.prediction import clean_estimate, output_for
from selfcascade.diffusion.upper_stage import gaussian_blur
from selfcascade.errors import InvalidRequest
from selfcascade.files.images import read_png_metadata
from selfcascade.ui.cli import main as cli_main


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_clean_estimate_and_output_are_inverse(prediction_type):
    generator = torch.Generator().manual_seed(0)
    latents, output = torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 4, 8, 8, generator=generator)
    alpha_bar = torch.tensor(0.37)
    x0 = clean_estimate(output, latents, alpha_bar, prediction_type)
    assert torch.allclose(output_for(x0, latents, alpha_bar, prediction_type), output, atol=1e-5)


def test_epsilon_clean_estimate_recovers_the_sample():
    x0, eps, alpha_bar = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6), torch.tensor(0.6)
    z = alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps
    assert torch.allclose(clean_estimate(eps, z, alpha_bar, "epsilon"), x0, atol=1e-5)
    v = alpha_bar.sqrt() * eps - (1 - alpha_bar).sqrt() * x0
    assert torch.allclose(clean_estimate(v, z, alpha_bar, "v_prediction"), x0, atol=1e-5)


def test_anchoring_pulls_the_low_band_to_the_pivot_and_leaves_the_high_band():
    generator = torch.Generator().manual_seed(1)
    pivot = torch.randn(1, 4, 32, 32, generator=generator)
    x0_model = torch.randn(1, 4, 32, 32, generator=generator)  # a "model" that predicts this clean image
    alphas = torch.linspace(0.99, 0.01, 1000)
    t = torch.tensor(500)
    z = torch.randn(1, 4, 32, 32, generator=generator)

    def predict(latents, timestep):
        a = alphas[int(timestep)]
        return (latents - a.sqrt() * x0_model) / (1 - a).sqrt()

    x0 = clean_estimate(anchored(predict, pivot, alphas, "epsilon", 1.0)(z, t), z, alphas[500], "epsilon")
    low = lambda x: gaussian_blur(x, ANCHOR_SIGMA)  # noqa: E731
    assert (low(x0) - low(pivot)).norm() < 0.5 * (low(x0_model) - low(pivot)).norm()
    assert torch.allclose(x0 - low(x0), x0_model - low(x0_model), atol=0.35 * float((x0_model - low(x0_model)).std()))
    assert anchored(predict, pivot, alphas, "epsilon", 0.0) is predict  # weight 0: the paper's sampling


def _pivot_distance(model, anchor):
    """Low-band distance between the last stage's result and its up-sampled pivot, on the embedded model."""
    captured = {}
    original = cascade.upsample_pivot

    def capture(*args):
        captured["pivot_up"] = original(*args)
        return captured["pivot_up"]

    request = GenerationRequest("a large red circle on a white background", 128, 128, steps=8, strength=0.5,
                                guidance=4.0, scheduler="ddpm", seed=7, anchor=anchor)
    cascade.upsample_pivot = capture
    try:
        final = [e.pivot for e in generate(request, model, previews=False) if isinstance(e, StageDone)][-1]
    finally:
        cascade.upsample_pivot = original
    low = lambda x: gaussian_blur(x, ANCHOR_SIGMA)  # noqa: E731
    return float((low(final) - low(captured["pivot_up"])).norm())


def test_anchored_stage_stays_closer_to_its_pivot(embedded_model):
    assert _pivot_distance(embedded_model, 1.0) < 0.7 * _pivot_distance(embedded_model, 0.0)


def test_anchor_weight_is_checked_recorded_and_off_for_direct(embedded_model, tmp_path):
    with pytest.raises(InvalidRequest, match="pivot anchoring"):
        GenerationRequest("a red circle", 128, 128, anchor=1.5).check()
    result = run(GenerationRequest("a red circle", 128, 128, steps=4, anchor=0.5), embedded_model, previews=False)
    assert result.metadata["pivot_anchor"] == 0.5 and result.metadata["anchor"] == 0.5
    direct = run(GenerationRequest("a red circle", 128, 128, steps=4, mode="direct"), embedded_model, previews=False)
    assert direct.metadata["pivot_anchor"] == 0.0
    out = tmp_path / "a.png"
    assert cli_main(["generate", "--prompt", "a red circle", "--size", "128x128", "--steps", "4",
                     "--anchor", "0.25", "--out", str(out)]) == 0
    assert read_png_metadata(out)["pivot_anchor"] == 0.25


def test_a_narrower_band_keeps_more_of_the_pivot():
    generator = torch.Generator().manual_seed(2)
    pivot, x0_model, z = (torch.randn(1, 4, 32, 32, generator=generator) for _ in range(3))
    alphas = torch.linspace(0.99, 0.01, 1000)

    def predict(latents, timestep):
        a = alphas[int(timestep)]
        return (latents - a.sqrt() * x0_model) / (1 - a).sqrt()

    def distance(sigma):
        x0 = clean_estimate(anchored(predict, pivot, alphas, "epsilon", 1.0, sigma)(z, torch.tensor(300)), z,
                            alphas[300], "epsilon")
        return float((x0 - pivot).norm())

    assert distance(0.7) < distance(ANCHOR_SIGMA) < float((x0_model - pivot).norm())


def test_the_embedded_model_anchors_a_narrower_band_and_records_it(embedded_model):
    from selfcascade.diffusion.anchor import EMBEDDED_ANCHOR_SIGMA

    assert embedded_model.default_anchor_sigma == EMBEDDED_ANCHOR_SIGMA < ANCHOR_SIGMA
    pixel = run(GenerationRequest("a red circle", 128, 128, steps=4, pivot_up="pixel"), embedded_model,
                previews=False)
    assert pixel.metadata["pivot_anchor_sigma"] == EMBEDDED_ANCHOR_SIGMA
    # measured with pixel pivots only: a bilinear latent pivot keeps the 2-pixel band
    latent = run(GenerationRequest("a red circle", 128, 128, steps=4, pivot_up="latent"), embedded_model,
                 previews=False)
    assert latent.metadata["pivot_anchor_sigma"] == ANCHOR_SIGMA


def test_a_copy_of_the_embedded_model_keeps_its_band_and_a_bad_settings_file_is_a_clear_error(tmp_path):
    """The band travels with the folder (selfcascade.json), not with the shipped path: a retrained copy
    loaded by --model DIR was once measured with the hub models' 2.0 px band."""
    import shutil

    from selfcascade.diffusion.anchor import EMBEDDED_ANCHOR_SIGMA
    from selfcascade.errors import InvalidRequest
    from selfcascade.models.folder_settings import SETTINGS_FILE, read_folder_settings
    from selfcascade.models.loader import EMBEDDED_MODEL, load_model

    copy = tmp_path / "my-shapes-copy"
    shutil.copytree(EMBEDDED_MODEL, copy)
    assert load_model(str(copy)).default_anchor_sigma == EMBEDDED_ANCHOR_SIGMA
    (copy / SETTINGS_FILE).unlink()  # a folder that says nothing is a hub-like model: the family's band
    assert load_model(str(copy)).default_anchor_sigma is None
    for text, words in (("{not json", "not readable JSON"), ('{"pivot_anchor_sigma": -1}', "positive number"),
                        ('{"anchor": 0.7}', "unknown setting")):
        (copy / SETTINGS_FILE).write_text(text)
        with pytest.raises(InvalidRequest, match=words):
            load_model(str(copy))
    assert read_folder_settings("some-org/some-hub-model") == {}


def test_embedded_image_and_video_models_anchor_at_their_measured_weights():
    from selfcascade.cascade.presets import EMBEDDED_VIDEO_ANCHOR, request_defaults
    from selfcascade.cascade.request import VideoRequest
    from selfcascade.ui.cli import _request, build_parser

    assert request_defaults(None)["anchor"] == 0.5  # the image presets' (docs/method.md, Pivot anchoring)
    assert request_defaults("shapes-video")["anchor"] == EMBEDDED_VIDEO_ANCHOR == 0.75
    assert request_defaults("shapes-video")["pivot_up"] == request_defaults(None)["pivot_up"]  # otherwise alike
    image = build_parser().parse_args(["generate", "--prompt", "a red circle", "--size", "128x128", "--out", "x.png"])
    assert _request(image, GenerationRequest).anchor == 0.5
    video = build_parser().parse_args(["video", "--prompt", "a red circle moving up", "--size", "128x128",
                                       "--out", "x.mp4"])
    assert _request(video, VideoRequest, frames=4, fps=8).anchor == EMBEDDED_VIDEO_ANCHOR
    video = build_parser().parse_args(["video", "--prompt", "a red circle moving up", "--size", "128x128",
                                       "--anchor", "0.25", "--out", "x.mp4"])
    assert _request(video, VideoRequest, frames=4, fps=8).anchor == 0.25  # the user's choice wins


def test_training_samples_of_the_embedded_video_model_anchor_like_its_videos():
    from selfcascade.cascade.presets import EMBEDDED_VIDEO_ANCHOR
    from selfcascade.training.samples import SampleSettings

    assert SampleSettings("a red circle moving up", (128, 128), frames=4).request(None).anchor == EMBEDDED_VIDEO_ANCHOR
    assert SampleSettings("a red circle", (128, 128)).request(None).anchor == 0.5
