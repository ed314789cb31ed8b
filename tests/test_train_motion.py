"""The embedded video model's trainer: a short run, a resumed run with trainable cross-attention K/V, both
loadable through the ordinary model loader."""

import json

import torch
from safetensors.torch import load_file

from selfcascade.models.loader import load_model
from selfcascade.shapes.train_motion import main as train_motion


def _unet_weights(folder):
    return load_file(next((folder / "unet").glob("*.safetensors")))


def test_train_then_resume_with_cross_attention(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--steps", "2", "--clips", "2", "--frames", "4", "--batch", "1", "--threads", "1"]
    train_motion(["--out", str(first), *common])
    log = json.loads((first / "training_log.json").read_text())
    assert log["trainable_motion_parameters"] > 0 and log["trainable_cross_attention_parameters"] == 0

    train_motion(["--out", str(second), "--resume", str(first), "--train-cross-attention", "--lr", "1e-2",
                  "--high-noise-fraction", "1", *common])
    log = json.loads((second / "training_log.json").read_text())
    assert log["trainable_cross_attention_parameters"] > 0
    before, after = _unet_weights(first), _unet_weights(second)
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert any("attn2.to_k" in key and "motion_modules" not in key for key in changed)
    assert any("motion_modules" in key for key in changed)
    frozen = [key for key in before if "motion_modules" not in key and "attn2.to_" not in key]
    assert frozen and not any(key in changed for key in frozen)  # the rest of the image UNet stays as it was

    model = load_model(str(second))
    assert model.is_video and model.family == "AnimateDiff"
