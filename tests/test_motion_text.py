"""Text-conditioned motion modules (selfcascade.models.motion_text) on a tiny random-weight AnimateDiff UNet:
a fresh conditioning changes nothing, a trained one makes the output depend on the prompt vector, per video
in a batch, and it saves and loads through the ordinary model loader."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from selfcascade.models.loader import load_model
from selfcascade.models.motion_text import SUBFOLDER, MotionTextConditioning, attach, detach_for_saving
from selfcascade.shapes.motion import DIRECTIONS
from selfcascade.shapes.train_motion import main as train_motion

from .tiny_components import save_tiny_animatediff

FRAMES = 3


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_animatediff(tmp_path_factory.mktemp("motion-text"))


def _inputs(videos: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(videos, 4, FRAMES, 8, 8, generator=generator)
    text = torch.randn(videos, 16, 32, generator=generator).repeat_interleave(FRAMES, 0)  # one per frame
    return sample, text


def _predict(unet, sample, text):
    with torch.no_grad():
        return unet(sample, torch.tensor(500), encoder_hidden_states=text).sample


def _randomise_heads(conditioning):
    with torch.no_grad():
        for head in conditioning.heads:
            head.weight.normal_(0, 0.5)


def test_fresh_conditioning_changes_nothing_and_trained_one_reads_the_prompt(folder):
    unet = load_model(str(folder)).unet
    sample, text = _inputs(1)
    plain = _predict(unet, sample, text)
    conditioning = attach(unet, MotionTextConditioning.for_unet(unet, text_dim=32))
    try:
        assert torch.equal(_predict(unet, sample, text), plain)  # zero-initialised heads
        _randomise_heads(conditioning)
        conditioned = _predict(unet, sample, text)
        assert not torch.allclose(conditioned, plain, atol=1e-4)
        other = text.clone()
        other[:, -1] += 1.0  # another prompt vector (the last position); the spatial layers see it too
        assert not torch.allclose(_predict(unet, sample, other), conditioned, atol=1e-4)
    finally:
        detach_for_saving(unet)
        conditioning.remember(None)  # the hooks stay, but add nothing without a remembered prompt


def test_each_video_in_a_batch_gets_its_own_prompt_vector(folder):
    unet = load_model(str(folder)).unet
    conditioning = attach(unet, MotionTextConditioning.for_unet(unet, text_dim=32))
    try:
        _randomise_heads(conditioning)
        sample, text = _inputs(2, seed=3)
        together = _predict(unet, sample, text)
        alone = [_predict(unet, sample[i:i + 1], text[i * FRAMES:(i + 1) * FRAMES]) for i in range(2)]
        assert torch.allclose(together, torch.cat(alone), atol=1e-5)
    finally:
        detach_for_saving(unet)
        conditioning.remember(None)


def test_saved_conditioning_loads_with_the_model(folder, tmp_path):
    copy = tmp_path / "with-motion-text"
    shutil.copytree(folder, copy)
    unet = load_model(str(folder)).unet
    saved = MotionTextConditioning.for_unet(unet, text_dim=32)
    _randomise_heads(saved)
    saved.save_pretrained(copy / SUBFOLDER, safe_serialization=True)

    model = load_model(str(copy))
    assert model.motion_text is not None
    assert torch.equal(model.motion_text.heads[0].weight, saved.heads[0].weight)
    assert load_model(str(folder)).motion_text is None  # a folder without one (every hub model) runs as before


def test_trainer_trains_and_ships_the_conditioning(tmp_path):
    out = tmp_path / "video"
    train_motion(["--out", str(out), "--steps", "2", "--clips", "2", "--frames", "4", "--batch", "1", "--threads",
                  "1", "--lr", "1e-2", "--text-conditioning", "--text-encoder-lr-scale", "0.5", "--probe-every", "1",
                  "--spread-motion-words", "--x0-weight-max", "20", "--direction-loss", "0.1"])
    log = json.loads((out / "training_log.json").read_text())
    assert log["trainable_motion_text_parameters"] > 0 and log["trainable_text_encoder_parameters"] > 0
    assert [step for step, _ in log["direction_gap"]] == [1, 2]
    model = load_model(str(out))
    assert model.motion_text is not None
    pipeline = model.pipeline
    motion_ids = pipeline.tokenizer.convert_tokens_to_ids(list(DIRECTIONS))
    rows = pipeline.text_encoder.get_input_embeddings().weight[motion_ids]
    assert torch.pdist(rows).min() > 0.3  # spread apart (they had stayed 0.1 apart from a shared start)
    assert any(head.weight.abs().sum() > 0 for head in model.motion_text.heads)  # it learned from zero
    unet_keys = load_file(next((out / "unet").glob("*.safetensors"))).keys()
    assert not any("motion_text" in key for key in unet_keys)  # the UNet folder stays a plain UNetMotionModel
