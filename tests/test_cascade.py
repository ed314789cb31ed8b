import threading

import numpy as np
import pytest

from selfcascade.cascade.pipeline import StageDone, StageStarted, StepDone, generate, run
from selfcascade.cascade.request import GenerationRequest
from selfcascade.errors import Cancelled, InvalidRequest
from selfcascade.shapes.detector import check
from selfcascade.shapes.world import parse_prompt


def request(**overrides):
    settings = dict(prompt="a large red circle on a white background", width=128, height=128, steps=12,
                    strength=0.5, guidance=4.0, scheduler="ddpm", seed=3)
    settings.update(overrides)
    return GenerationRequest(**settings)


def test_event_order(embedded_model):
    events = list(generate(request(), embedded_model))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "StageStarted" and kinds[-1] == "Finished"
    starts = [e for e in events if isinstance(e, StageStarted)]
    dones = [e for e in events if isinstance(e, StageDone)]
    assert [s.size for s in starts] == [(64, 64), (128, 128)] == [d.size for d in dones]
    # each stage: started, its steps in order, done
    position = 0
    for start, done in zip(starts, dones):
        begin, end = events.index(start, position), events.index(done, position)
        steps = [e.step for e in events[begin + 1:end]]
        assert all(isinstance(e, StepDone) for e in events[begin + 1:end])
        assert steps == list(range(1, start.steps + 1))
        assert done.preview.size == done.size
        position = end
    assert starts[1].steps == 6  # strength 0.5 of 12 steps
    final = events[-1]
    assert final.image.size == (128, 128)
    assert final.metadata["stage_sizes"] == ["64x64", "128x128"]


def test_same_seed_same_image_other_seed_other_image(embedded_model):
    first = np.asarray(run(request(), embedded_model).image)
    again = np.asarray(run(request(), embedded_model).image)
    other = np.asarray(run(request(seed=4), embedded_model).image)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("mode", ["direct", "hires-fix"])
def test_baselines_make_the_target_size(embedded_model, mode):
    result = run(request(mode=mode), embedded_model)
    assert result.image.size == (128, 128)
    expected = ["128x128"] if mode == "direct" else ["64x64", "128x128"]
    assert result.metadata["stage_sizes"] == expected


def test_cancel_stops_within_a_step(embedded_model):
    cancel = threading.Event()
    steps = 0
    with pytest.raises(Cancelled):
        for event in generate(request(steps=30), embedded_model, cancel=cancel):
            if isinstance(event, StepDone):
                steps += 1
                if steps == 3:
                    cancel.set()
    assert steps == 3


def test_bad_request_fails_before_sampling(embedded_model):
    with pytest.raises(InvalidRequest, match="strength"):
        next(generate(request(strength=0), embedded_model))
    with pytest.raises(InvalidRequest, match="stages must grow"):
        next(generate(request(stages="128,64"), embedded_model))


def test_cascade_composes_better_than_direct_at_4x(embedded_model):
    """A modest in-test threshold; the benchmark has the real figures over 64+ prompt x seed pairs."""
    prompts = ["a large red circle", "a small blue square", "a large yellow triangle on a black background",
               "a small green circle on a white background", "a large magenta square", "a small cyan triangle"]
    scores = {"direct": 0, "tuning-free": 0}  # right in everything but the outline's exact shape
    composed = {"direct": 0, "tuning-free": 0}  # exactly one object: the layout
    for mode in scores:
        for index, prompt in enumerate(prompts):
            result = run(request(prompt=prompt, width=256, height=256, mode=mode, steps=20, seed=index),
                         embedded_model, previews=False)
            verdict = check(result.image, parse_prompt(prompt))
            # 20 steps at 4x leave outlines a pixel or two off the ideal shape, which the strict judge fails
            # (docs/results.md has the full figures); colour, count, size, background and cleanliness must hold.
            scores[mode] += not set(verdict.failures) - {"shape"}
            composed[mode] += not {"copies", "missing"} & set(verdict.failures)
    assert scores["tuning-free"] >= scores["direct"] + 2, scores
    assert composed["tuning-free"] >= 5 and composed["direct"] <= 2, composed


def test_tuned_without_an_adapter_uses_the_one_shipped_for_the_embedded_model(embedded_model):
    shipped = run(request(mode="tuned", steps=4), embedded_model, previews=False)
    named = run(request(mode="tuned", steps=4, adapter="shapes-adapter"), embedded_model, previews=False)
    assert shipped.metadata["adapter"] == named.metadata["adapter"] == "shapes-adapter"  # by name, not a path
    assert np.array_equal(np.asarray(shipped.image), np.asarray(named.image))
    free = run(request(mode="tuning-free", steps=4), embedded_model, previews=False)
    assert not np.array_equal(np.asarray(shipped.image), np.asarray(free.image))  # the upsamplers did run
    assert free.metadata["adapter"] is None
    assert request(mode="tuned", model="embedded").tuned_adapter() == "shapes-adapter"
    for other in ("some-org/some-model", "/no/such/folder"):  # other models have no shipped adapter
        with pytest.raises(InvalidRequest, match="needs an adapter"):
            request(mode="tuned", model=other).check()
    assert request(mode="tuned", model="some-org/some-model", adapter="mine").tuned_adapter() == "mine"
