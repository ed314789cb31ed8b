"""The trainer's checkpoints and Stop, and the live-sample schedule, at the library level (no gradio)."""

import threading

import pytest
import torch

from selfcascade.adapters.files import load_adapter
from selfcascade.shapes.train_adapter import render_examples
from selfcascade.training.loop import TrainingDone, TrainingRequest, TrainingStep, train
from selfcascade.training.samples import samples_left

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return render_examples(tmp_path_factory.mktemp("examples"), 4, 128, seed=0)


def test_checkpoints_every_n_steps_and_a_stop_that_saves(embedded_model, examples, tmp_path):
    cancel = threading.Event()
    request = TrainingRequest(images=examples, size=(128, 128), steps=50, batch=1, out=str(tmp_path / "a"),
                              checkpoint_every=2)
    events = []
    for event in train(request, embedded_model, cancel):
        events.append(event)
        if isinstance(event, TrainingStep) and event.checkpoint is not None:
            saved = load_adapter(event.checkpoint, embedded_model)  # each checkpoint is a usable adapter
        if isinstance(event, TrainingStep) and event.step == 5:
            cancel.set()
    steps = [e for e in events if isinstance(e, TrainingStep)]
    assert [e.step for e in steps if e.checkpoint is not None] == [2, 4]
    done = events[-1]
    assert isinstance(done, TrainingDone) and done.stopped and done.steps == 5 and len(done.losses) == 5
    final = load_adapter(done.path, embedded_model)
    assert not torch.equal(final.levels[0].gain, saved.levels[0].gain)  # step 5's weights, not step 4's


def test_no_checkpoint_at_the_last_step_and_none_by_default(embedded_model, examples, tmp_path):
    events = list(train(TrainingRequest(images=examples, size=(128, 128), steps=2, batch=1, out=str(tmp_path / "a"),
                                        checkpoint_every=2), embedded_model))
    assert all(e.checkpoint is None for e in events if isinstance(e, TrainingStep))  # TrainingDone saves it
    assert not events[-1].stopped


@pytest.mark.parametrize("step,steps,every,left", [(1, 60, 20, 3), (20, 60, 20, 3), (21, 60, 20, 2),
                                                   (60, 60, 20, 1), (5, 10, 0, 1), (3, 4, 2, 1)])
def test_samples_left_for_the_time_estimate(step, steps, every, left):
    assert samples_left(step, steps, every) == left
