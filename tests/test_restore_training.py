"""The restore objective and the channel-mixing upsampler design: they train, save, load and drive the tuned mode."""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfcascade.adapters.files import load_adapter
from selfcascade.cascade.pipeline import run, upsample_pivot
from selfcascade.cascade.request import GenerationRequest
from selfcascade.errors import InvalidRequest
from selfcascade.models.vae import encode_mean
from selfcascade.shapes.train_adapter import render_examples
from selfcascade.training.data.images import TrainingImages
from selfcascade.training.features import FrozenFeatures
from selfcascade.training.loop import TrainingDone, TrainingRequest, restored_with, train


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return render_examples(tmp_path_factory.mktemp("examples"), 6, 128, seed=1)


def test_restore_starts_from_the_pivot_as_an_upper_stage_does(embedded_model, examples):
    """z_t of the restore objective is noised from the pivot up-sampled exactly as the cascade up-samples it."""
    data = TrainingImages(examples[:2], (128, 128), embedded_model.size_multiple)
    pixels, captions = data.batch(2, random.Random(0))
    batch = FrozenFeatures(embedded_model, restore="pixel")(pixels, captions)
    small = F.interpolate(pixels, scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)
    pivot = encode_mean(embedded_model.vae, small, tiled=False)
    expected = upsample_pivot(embedded_model, pivot, (128, 128), "pixel")
    assert batch.pivot_up.shape == batch.z0.shape
    # the same path; a decoded pixel may round to another 8-bit level in a batch of another size
    assert (batch.pivot_up - expected).abs().mean() < 1e-3 and torch.allclose(batch.pivot_up, expected, atol=0.05)
    assert not torch.allclose(batch.pivot_up, batch.z0, atol=1e-2)  # the pivot lost detail: something to restore
    assert FrozenFeatures(embedded_model)(pixels, captions).pivot_up is None  # the paper's objective
    latent = FrozenFeatures(embedded_model, restore="latent")(pixels, captions).pivot_up  # a hub model's default
    assert torch.allclose(latent, F.interpolate(pivot, size=(32, 32), mode="bilinear", align_corners=False), atol=1e-4)


def test_restore_up_samples_the_pivot_as_the_model_generates():
    assert restored_with(TrainingRequest(images=[], size=(128, 128))) == "pixel"  # the embedded preset's
    assert restored_with(TrainingRequest(images=[], size=(128, 128), model="shapes-video")) == "pixel"
    assert restored_with(TrainingRequest(images=[], size=(512, 512), model="some/hub-model")) == "latent"
    assert restored_with(TrainingRequest(images=[], size=(128, 128), objective="keep")) is None


def test_restore_trains_a_mixed_adapter_that_drives_the_tuned_mode(embedded_model, examples, tmp_path):
    request = TrainingRequest(images=examples, size=(128, 128), steps=4, batch=2, learning_rate=1e-2,
                              objective="restore", design="mixed", width=8, strength=0.3,
                              out=str(tmp_path / "adapter"))
    done = list(train(request, embedded_model))[-1]
    assert isinstance(done, TrainingDone) and all(np.isfinite(done.losses))
    adapter = load_adapter(done.path, embedded_model)
    assert adapter.config.design == "mixed" and adapter.config.training["objective"] == "restore"
    assert adapter.levels[0].lift.in_channels == adapter.config.skip_channels[adapter.config.skip_indices[0]]
    assert any(level.gain.abs().sum() > 0 for level in adapter.levels)
    common = dict(prompt="a red circle on a white background", width=128, height=128, steps=6, seed=3)
    tuned = run(GenerationRequest(mode="tuned", adapter=str(done.path), **common), embedded_model, previews=False)
    free = run(GenerationRequest(mode="tuning-free", **common), embedded_model, previews=False)
    assert tuned.image.size == (128, 128)
    assert not np.array_equal(np.asarray(tuned.image), np.asarray(free.image))


@pytest.mark.parametrize("field, value, message", [("objective", "sharpen", "unknown training objective"),
                                                   ("design", "huge", "unknown upsampler design"),
                                                   ("width", 0, "upsampler width")])
def test_bad_objective_design_or_width(embedded_model, examples, field, value, message):
    with pytest.raises(InvalidRequest, match=message):
        list(train(TrainingRequest(images=examples, size=(128, 128), **{field: value}), embedded_model))
