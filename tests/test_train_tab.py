"""The Train adapter tab's handlers (as the app calls them), and the adapter upload check."""

import pytest
import torch

from selfcascade.adapters import load_adapter
from selfcascade.training import TrainingRequest, train
from selfcascade.ui import train_handlers

from .bad_files import make_bad_image


def run(uploads=None, use_examples=False, width=128, height=128, steps=2, model="embedded"):
    return list(train_handlers.train_stream(model, uploads, use_examples, width, height, steps, 2e-3, 2, ""))


def test_examples_train_and_give_a_downloadable_adapter(embedded_model):
    status, plot, sample, path = run(use_examples=True)[-1]
    assert status.startswith("**Trained**") and len(plot) == 2 and sample.size == (256, 256)
    assert path.endswith("adapter.safetensors") and load_adapter(path, embedded_model)
    assert path.rsplit("/", 1)[0] in train_handlers.adapter_choices()


@pytest.mark.parametrize("kind,message", [("none", "no training images"), ("text", "not an image"),
                                          ("corrupt", "damaged"), ("small", "smaller than the stage"),
                                          ("huge", "megapixels")])
def test_bad_uploads(embedded_model, tmp_path, kind, message):
    path = make_bad_image(tmp_path, kind, valid_side=256) if kind != "none" else None
    status = run(uploads=[path] if path else None)[-1][0]
    assert status.startswith("**Not trained:**") and message in status


def test_uploaded_adapter_files_are_checked(embedded_model, tmp_path):
    pickle = tmp_path / "adapter.bin"
    torch.save({"x": torch.zeros(1)}, pickle)
    _, message = train_handlers.add_uploaded_adapter(str(pickle), "embedded")
    assert "refused" in message and "pickled" in message
    shipped = train_handlers.SHIPPED_ADAPTER / "adapter.safetensors"
    update, message = train_handlers.add_uploaded_adapter(str(shipped), "embedded")
    assert "ready" in message


def test_resume_continues_from_a_saved_adapter(embedded_model, tmp_path):
    images = train_handlers.render_examples(tmp_path / "images", 4, 128, 0)
    resumed = list(train(TrainingRequest(images=images, size=(128, 128), steps=1, batch=2, out=str(tmp_path / "a"),
                                         resume=str(train_handlers.SHIPPED_ADAPTER)), embedded_model))[-1]
    shipped = load_adapter(train_handlers.SHIPPED_ADAPTER, embedded_model)
    after = load_adapter(resumed.path, embedded_model)
    change = (after.levels[0].gain - shipped.levels[0].gain).abs().max()
    assert 0 < change < 0.05  # one small step away from the shipped weights, not from zero
