"""Algorithm 1: the upsamplers train (and only they), save, load, and drive the tuned mode."""

import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from selfcascade.adapters.files import load_adapter
from selfcascade.errors import InvalidRequest
from selfcascade.shapes.train_adapter import render_examples
from selfcascade.training.data.images import TrainingImages
from selfcascade.training.features import FrozenFeatures
from selfcascade.training.loop import TrainingDone, TrainingRequest, TrainingStarted, TrainingStep, train


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return render_examples(tmp_path_factory.mktemp("examples"), 8, 128, seed=0)


def test_a_few_steps_train_only_the_upsamplers(embedded_model, examples, tmp_path):
    frozen = {name: p.clone() for name, p in embedded_model.unet.named_parameters()}
    request = TrainingRequest(images=examples, size=(128, 128), steps=6, batch=2, learning_rate=1e-2,
                              out=str(tmp_path / "adapter"))
    events = list(train(request, embedded_model))
    started = events[0]
    assert isinstance(started, TrainingStarted) and started.processes == 1 and started.effective_batch == 2
    steps = [e for e in events if isinstance(e, TrainingStep)]
    assert [e.step for e in steps] == list(range(1, 7)) and all(e.loss > 0 for e in steps)
    done = events[-1]
    assert isinstance(done, TrainingDone) and (done.path / "adapter.safetensors").is_file()
    adapter = load_adapter(done.path, embedded_model)
    assert any(level.gain.abs().sum() > 0 for level in adapter.levels)  # moved away from the zero start
    assert all(torch.equal(p, frozen[name]) for name, p in embedded_model.unet.named_parameters())
    # No gradient reached (or was stored for) a frozen weight.
    for module in (embedded_model.unet, embedded_model.vae, embedded_model.pipeline.text_encoder):
        assert all(not p.requires_grad and p.grad is None for p in module.parameters())
    # What it was trained for: in the safetensors metadata, the config and a model card, no server path.
    with safe_open(str(done.path / "adapter.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["selfcascade_base_model"] == "embedded" and metadata["selfcascade_stage_size"] == "128x128"
    assert metadata["selfcascade_steps"] == "6" and metadata["selfcascade_timesteps"] == "1-499"
    assert metadata["selfcascade_base_family"] == "Stable Diffusion 1.x/2.x"
    record = adapter.config.training
    assert record["final_loss"] == pytest.approx(sum(e.loss for e in steps) / 6, rel=1e-4)
    assert record["effective_batch"] == 2 and record["date"].startswith("20")
    card = (done.path / "README.md").read_text()
    assert "embedded" in card and "128x128" in card and "1-499" in card and str(tmp_path) not in card
    assert str(tmp_path) not in metadata["selfcascade_config"]
    log = json.loads((done.path / "training_log.json").read_text())
    assert len(log["losses"]) == 6 and log["processes"] == 1


def test_frozen_features_are_reused_exactly(embedded_model, examples):
    """A crop and caption met again skip the VAE encodes and the pivot's encoder pass, with the same numbers."""
    data = TrainingImages(examples[:2], (128, 128), embedded_model.size_multiple)
    pixels, captions = data.batch(2, random.Random(0))
    fresh = FrozenFeatures(embedded_model, budget_mb=0)(pixels, captions)
    features = FrozenFeatures(embedded_model, keep=(2, 5))
    features(pixels, captions)
    encodes = []
    real = embedded_model.vae.encode
    embedded_model.vae.encode = lambda *args, **kwargs: encodes.append(1) or real(*args, **kwargs)
    try:
        again = features(pixels.flip(0), captions[::-1])
    finally:
        del embedded_model.vae.encode
    assert encodes == [] and features.hit_rate() == 0.5
    assert torch.allclose(again.z0, fresh.z0.flip(0), atol=1e-5)
    assert torch.allclose(again.conditioning.positive, fresh.conditioning.positive.flip(0), atol=1e-5)
    assert [s is None for s in again.skips] == [i not in (2, 5) for i in range(len(fresh.skips))]
    for i in (2, 5):
        assert torch.allclose(again.skips[i], fresh.skips[i].flip(0), atol=1e-5)


def test_accumulation_and_mixed_precision_through_accelerate(embedded_model, examples, tmp_path):
    """The Accelerator is a process singleton: a second run with another precision in the same process works."""
    runs = {}
    for precision in ("bf16", "no"):
        request = TrainingRequest(images=examples, size=(128, 128), steps=2, batch=1, grad_accum=3,
                                  mixed_precision=precision, out=str(tmp_path / precision))
        runs[precision] = list(train(request, embedded_model))
        started = runs[precision][0]
        assert started.mixed_precision == precision and started.grad_accum == 3 and started.effective_batch == 3
        assert "effective batch 3 = batch 1 x 1 process x 3 accumulation steps" in started.describe()
    record = load_adapter(tmp_path / "bf16", embedded_model).config.training
    assert record["mixed_precision"] == "bf16" and record["grad_accum"] == 3
    with pytest.raises(InvalidRequest, match="fp16 needs a CUDA GPU"):
        list(train(TrainingRequest(images=examples, size=(128, 128), mixed_precision="fp16"), embedded_model))
    with pytest.raises(InvalidRequest, match="gradient accumulation"):
        list(train(TrainingRequest(images=examples, size=(128, 128), grad_accum=0), embedded_model))


def test_bad_training_input(embedded_model, examples, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    small = tmp_path / "small.png"
    Image.new("RGB", (64, 64)).save(small)
    cases = [([], "no training images"), ([str(text)], "not an image"), ([str(small)], "smaller than the stage")]
    for images, message in cases:
        with pytest.raises(InvalidRequest, match=message):
            list(train(TrainingRequest(images=images, size=(128, 128), steps=1), embedded_model))
    with pytest.raises(InvalidRequest, match="learning rate"):
        list(train(TrainingRequest(images=examples, size=(128, 128), learning_rate=0), embedded_model))


def test_cli_train_then_generate_tuned(examples, tmp_path):
    folder, empty = tmp_path / "adapter", tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "selfcascade", "train", "--images", str(empty),
                           "--size", "128x128", "--steps", "2", "--batch", "2", "--out", str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "no images" in done.stderr  # a folder without images is refused
    images = str(Path(examples[0]).parent)
    done = subprocess.run([sys.executable, "-m", "selfcascade", "train", "--images", images, "--size", "128x128",
                           "--steps", "2", "--batch", "2", "--out", str(folder), "--objective", "keep",
                           "--design", "shared"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    config = json.loads((folder / "config.json").read_text())  # the paper's adapter, when asked for
    assert config["design"] == "shared" and config["width"] == 4 and config["training"]["objective"] == "keep"
    # Not a terminal: the layout line, then a progress line every 10 steps and at the last, no bar.
    assert "training on 1 process, cpu: effective batch 2 = batch 2 x 1 process x 1 accumulation step" in done.stderr
    assert "step 2/2  loss" in done.stderr and "\r" not in done.stderr
    out = tmp_path / "tuned.png"
    done = subprocess.run([sys.executable, "-m", "selfcascade", "generate", "--prompt", "a red circle", "--size",
                           "128x128", "--steps", "4", "--mode", "tuned", "--adapter", str(folder), "--out", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "stage" not in done.stderr and "memory:" in done.stderr
    assert Image.open(out).size == (128, 128)


def test_the_record_counts_the_steps_actually_trained(embedded_model, examples, tmp_path):
    """A checkpoint records its step, a stopped run the steps it did (not the steps asked for), in config.json,
    the single file's metadata and the model card; resuming adds the steps done to the earlier ones."""
    cancel, folder, checkpoints = threading.Event(), tmp_path / "adapter", []
    request = TrainingRequest(images=examples, size=(128, 128), steps=5, batch=1, checkpoint_every=2,
                              out=str(folder))
    for event in train(request, embedded_model, cancel):
        if isinstance(event, TrainingStep) and event.checkpoint:
            checkpoints.append((json.loads((folder / "config.json").read_text())["training"],
                                (folder / "README.md").read_text()))
        if isinstance(event, TrainingStep) and event.step == 3:
            cancel.set()  # as Stop does: step 4 never starts
    record, card = checkpoints[0]
    assert len(checkpoints) == 1 and record["steps"] == 2 and record["planned_steps"] == 5
    assert record["ended"] == "checkpoint" and "| steps | 2 (checkpoint at step 2 of 5; effective batch 1" in card
    assert isinstance(event, TrainingDone) and event.stopped and event.steps == 3
    record = json.loads((folder / "config.json").read_text())["training"]
    assert (record["steps"], record["planned_steps"], record["ended"]) == (3, 5, "stopped")
    assert "| steps | 3 (stopped at step 3 of 5; effective batch 1" in (folder / "README.md").read_text()
    with safe_open(str(folder / "adapter.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["selfcascade_steps"] == "3" and metadata["selfcascade_ended"] == "stopped"
    resumed = TrainingRequest(images=examples, size=(128, 128), steps=2, batch=1, resume=str(folder),
                              out=str(tmp_path / "resumed"))
    list(train(resumed, embedded_model))
    record = json.loads((tmp_path / "resumed" / "config.json").read_text())["training"]
    assert record["steps"] == 5 and "planned_steps" not in record and "ended" not in record  # finished: 3 + 2
    assert "| steps | 5 (effective batch 1" in (tmp_path / "resumed" / "README.md").read_text()
