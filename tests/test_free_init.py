"""FreeInit for a video's first stage: the new start keeps the diffused result's low frequencies and takes the
high ones from fresh noise; the cascade runs the extra passes in stage 0 only, for both video families."""

import pytest
import torch
from diffusers import DDIMScheduler

from selfcascade.cascade.pipeline import StageStarted, StepDone, generate
from selfcascade.cascade.request import VideoRequest
from selfcascade.diffusion.free_init import reinitialised
from selfcascade.errors import InvalidRequest
from selfcascade.models.loader import load_model
from selfcascade.ui import video_handlers

from .tiny_components import save_tiny_animatediff, save_tiny_text_to_video

FRAMES = 8


def _start(clean, seed):
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(99))
    return reinitialised(clean, noise, scheduler, FRAMES, torch.Generator().manual_seed(seed)), scheduler


def test_the_new_start_keeps_the_results_low_band_and_redraws_the_high_one():
    clean = torch.zeros(2 * FRAMES, 4, 16, 16)
    clean[:FRAMES] += 3.0  # the first video is bright everywhere, in every frame; the second is flat zero
    start, scheduler = _start(clean, seed=1)
    assert start.shape == clean.shape and start.dtype == clean.dtype
    assert abs(float(start.std()) - 1) < 0.15  # what a sampler expects at t = T
    # The zero-frequency band passes the filter whole: the bright video's start is offset by sqrt(a_bar_T) * 3.
    offset = float(start[:FRAMES].mean() - start[FRAMES:].mean())
    assert abs(offset - 3 * float(scheduler.alphas_cumprod[-1]) ** 0.5) < 0.06
    # Another draw of fresh noise changes the high band only: the two starts agree in their lowest frequencies.
    other, _ = _start(clean, seed=2)
    difference = torch.fft.fftn((start - other)[:FRAMES].permute(1, 0, 2, 3), dim=(-3, -2, -1))
    assert float(difference[..., 0, 0, 0].abs().max()) < 1e-3 * float(difference.abs().max())
    assert float((start - other).abs().mean()) > 0.1


def test_free_init_must_be_a_small_whole_number():
    for bad in (-1, 5, 1.5, True, "2"):
        with pytest.raises(InvalidRequest, match="free_init"):
            VideoRequest("a red circle", 64, 64, free_init=bad).check()
    form = video_handlers.build_video_request("shapes-video", "a red circle moving up", "", 128, 128, 4, 8, "",
                                              "tuning-free", 6, 0.5, 4.0, "ddpm", None, None, None, 0, free_init=2)
    assert form.free_init == 2  # the Video tab's slider
    with pytest.raises(InvalidRequest, match="FreeInit passes must be a whole number"):
        video_handlers.build_video_request("shapes-video", "a red circle", "", 128, 128, 4, 8, "", "tuning-free", 6,
                                           0.5, 4.0, "ddpm", None, None, None, 0, free_init=1.5)


@pytest.mark.parametrize("build", [save_tiny_animatediff, save_tiny_text_to_video])
def test_the_first_stage_runs_again_and_only_it(build, tmp_path):
    model = load_model(str(build(tmp_path / "model")))

    def events(passes):
        request = VideoRequest("a red circle moving right", 128, 128, frames=3, steps=4, strength=0.5, seed=1,
                               scheduler="ddim", free_init=passes)
        return list(generate(request, model, previews=False))

    once, twice = events(0), events(1)
    planned = [event.steps for event in twice if isinstance(event, StageStarted)]
    assert planned == [8, 2]  # stage 0 twice (4 + 4 steps), stage 1 as before (strength 0.5 of 4)
    steps = [(event.stage, event.step) for event in twice if isinstance(event, StepDone)]
    assert steps == [(0, step) for step in range(1, 9)] + [(1, 1), (1, 2)]
    assert twice[-1].metadata["free_init"] == 1 and once[-1].metadata["free_init"] == 0
    first, second = once[-1].frames, twice[-1].frames
    assert len(second) == 3 and any(a.tobytes() != b.tobytes() for a, b in zip(first, second))
