"""The hub-model path (any SD 1.x/2.x diffusers folder), exercised with tiny random weights."""

import pytest

from selfcascade.cascade.pipeline import run
from selfcascade.cascade.request import GenerationRequest
from selfcascade.models.loader import ModelUnavailable, load_model

from .tiny_components import save_tiny_sdxl, save_tiny_stable_diffusion


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("models"))


def test_sd_folder_runs_the_cascade_at_the_right_sizes(tiny_sd):
    model = load_model(str(tiny_sd))
    assert model.base_size == (64, 64) and model.vae_scale_factor == 8 and model.size_multiple == 16
    result = run(GenerationRequest("a red circle", 128, 96, steps=4, strength=0.7, guidance=5.0), model)
    assert result.image.size == (128, 96)
    assert result.metadata["stage_sizes"][-1] == "128x96"
    assert len(result.metadata["stage_sizes"]) == 2
    assert result.metadata["model"] == "tiny-sd"  # the folder name, not this machine's path to it


def test_sdxl_folder_runs_the_cascade(tmp_path):
    model = load_model(str(save_tiny_sdxl(tmp_path)))
    assert type(model).__name__ == "StableDiffusionXLModel"
    result = run(GenerationRequest("a blue square", 128, 128, steps=4, strength=0.7, guidance=5.0), model)
    assert result.image.size == (128, 128)
    assert result.metadata["stage_sizes"] == ["64x64", "128x128"]


def test_unknown_hub_id_offline_is_a_clear_message():
    with pytest.raises(ModelUnavailable, match="not available offline"):
        load_model("someone/not-a-real-model")


def test_folder_without_model_index(tmp_path):
    with pytest.raises(ModelUnavailable, match="model_index.json"):
        load_model(str(tmp_path))
