"""Algorithm 1: the upsamplers train (and only they), save, load, and drive the tuned mode."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from selfcascade.adapters import load_adapter
from selfcascade.shapes.train_adapter import render_examples
from selfcascade.stages import InvalidRequest
from selfcascade.training import TrainingDone, TrainingRequest, TrainingStep, train


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return render_examples(tmp_path_factory.mktemp("examples"), 8, 128, seed=0)


def test_a_few_steps_train_only_the_upsamplers(embedded_model, examples, tmp_path):
    frozen = {name: p.clone() for name, p in embedded_model.unet.named_parameters()}
    request = TrainingRequest(images=examples, size=(128, 128), steps=6, batch=2, learning_rate=1e-2,
                              out=str(tmp_path / "adapter"))
    events = list(train(request, embedded_model))
    steps = [e for e in events if isinstance(e, TrainingStep)]
    assert [e.step for e in steps] == list(range(1, 7)) and all(e.loss > 0 for e in steps)
    done = events[-1]
    assert isinstance(done, TrainingDone) and (done.path / "adapter.safetensors").is_file()
    adapter = load_adapter(done.path, embedded_model)
    assert any(level.gain.abs().sum() > 0 for level in adapter.levels)  # moved away from the zero start
    assert all(torch.equal(p, frozen[name]) for name, p in embedded_model.unet.named_parameters())


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
                           "--steps", "2", "--batch", "2", "--out", str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "tuned.png"
    done = subprocess.run([sys.executable, "-m", "selfcascade", "generate", "--prompt", "a red circle", "--size",
                           "128x128", "--steps", "4", "--mode", "tuned", "--adapter", str(folder), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (128, 128)
