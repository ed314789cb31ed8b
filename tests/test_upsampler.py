"""Time-aware feature upsamplers: size, exact zero start, attachment through the UNet's residual inputs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel

from selfcascade.adapters.designs import default_width
from selfcascade.adapters.files import load_adapter, save_adapter
from selfcascade.adapters.upsampler import new_upsamplers, skip_layout
from selfcascade.cascade.pipeline import run
from selfcascade.cascade.request import GenerationRequest
from selfcascade.errors import InvalidRequest
from selfcascade.models.loader import load_pipeline
from selfcascade.models.sdxl import StableDiffusionXLModel
from selfcascade.models.stable_diffusion import StableDiffusionModel

from .tiny_components import save_tiny_sdxl, save_tiny_stable_diffusion

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def meta_unet(name):
    """The real architecture from its config, without allocating weights."""
    config = json.loads((CONFIGS / name).read_text())
    with torch.device("meta"):
        return UNet2DConditionModel.from_config(config)


@pytest.mark.parametrize("name,levels", [("sd21_unet.json", 4), ("sdxl_unet.json", 3)])
def test_tiny_on_the_real_architectures(name, levels):
    unet = meta_unet(name)
    upsamplers = new_upsamplers(unet, name)
    assert len(upsamplers.levels) == levels
    count = sum(p.numel() for p in upsamplers.parameters())
    assert count <= 10_000, count
    mixed = new_upsamplers(unet, name, default_width("mixed"), "mixed")
    mixed_count = sum(p.numel() for p in mixed.parameters())
    assert count < mixed_count < 0.005 * sum(p.numel() for p in unet.parameters())  # still a small adapter


def test_skip_layout_matches_the_unet(embedded_model):
    channels, levels, indices = skip_layout(embedded_model.unet)
    latents = torch.zeros(1, 4, 32, 32)
    from selfcascade.adapters.upsampler import encoder_skips

    conditioning = embedded_model.encode_prompt("a red circle", "", guided=False)
    skips = encoder_skips(embedded_model, latents, torch.tensor(500), conditioning)
    assert [s.shape[1] for s in skips] == channels
    assert [s.shape[-1] for s in skips] == [32 // 2**level for level in levels]
    assert indices == [max(i for i, level in enumerate(levels) if level == n) for n in range(max(levels) + 1)]


def test_untrained_adapter_reproduces_tuning_free_exactly(embedded_model, tmp_path):
    adapter = save_adapter(new_upsamplers(embedded_model.unet, embedded_model.name), tmp_path / "zero",
                           size=(128, 128), model=embedded_model)
    settings = dict(prompt="a large red circle", width=128, height=128, steps=8, scheduler="ddpm", seed=2)
    free = run(GenerationRequest(mode="tuning-free", **settings), embedded_model, previews=False)
    tuned = run(GenerationRequest(mode="tuned", adapter=str(adapter), **settings), embedded_model, previews=False)
    assert np.array_equal(np.asarray(free.image), np.asarray(tuned.image))


def test_a_nonzero_adapter_changes_the_result(embedded_model, tmp_path):
    upsamplers = new_upsamplers(embedded_model.unet, embedded_model.name)
    for level in upsamplers.levels:
        torch.nn.init.constant_(level.gain, 0.5)
    adapter = save_adapter(upsamplers, tmp_path / "half", size=(128, 128), model=embedded_model)
    settings = dict(prompt="a large red circle", width=128, height=128, steps=8, scheduler="ddpm", seed=2)
    free = run(GenerationRequest(mode="tuning-free", **settings), embedded_model, previews=False)
    tuned = run(GenerationRequest(mode="tuned", adapter=str(adapter), **settings), embedded_model, previews=False)
    assert not np.array_equal(np.asarray(free.image), np.asarray(tuned.image))


def test_adapter_round_trip_and_refusals(embedded_model, tmp_path):
    upsamplers = new_upsamplers(embedded_model.unet, embedded_model.name)
    torch.nn.init.normal_(upsamplers.levels[0].gain)
    folder = save_adapter(upsamplers, tmp_path / "a", size=(128, 128), model=embedded_model)
    for path in (folder, folder / "adapter.safetensors"):
        loaded = load_adapter(path, embedded_model)
        assert torch.equal(loaded.levels[0].gain, upsamplers.levels[0].gain)
    pickle = tmp_path / "adapter.bin"
    torch.save(upsamplers.state_dict(), pickle)
    with pytest.raises(InvalidRequest, match="pickled"):
        load_adapter(pickle, embedded_model)
    corrupt = tmp_path / "broken.safetensors"
    corrupt.write_bytes((folder / "adapter.safetensors").read_bytes()[:100])
    with pytest.raises(InvalidRequest, match="damaged"):
        load_adapter(corrupt, embedded_model)
    other_unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
                                      down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                      up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32)
    save_adapter(new_upsamplers(other_unet, "another-model"), tmp_path / "other", size=(1024, 1024))
    with pytest.raises(InvalidRequest, match="trained for another-model"):
        load_adapter(tmp_path / "other", embedded_model)


def test_adapters_of_another_family_or_latent_layout_are_refused(embedded_model, tmp_path):
    """Each mismatch is one message naming both sides by their public names; nothing crashes later."""
    pipeline = load_pipeline(str(save_tiny_sdxl(tmp_path)), torch.float32)
    sdxl = StableDiffusionXLModel(pipeline, str(tmp_path / "tiny-sdxl"))
    sd = StableDiffusionModel(load_pipeline(str(save_tiny_stable_diffusion(tmp_path)), torch.float32),
                              str(tmp_path / "tiny-sd"))
    folders = {model: save_adapter(new_upsamplers(model.unet, model.name), tmp_path / f"for-{index}", (128, 128),
                                   model) for index, model in enumerate((embedded_model, sdxl, sd))}
    relabelled = new_upsamplers(embedded_model.unet, embedded_model.name)
    save_adapter(relabelled, tmp_path / "sixteen", (128, 128), embedded_model)
    relabelled.register_to_config(latent_channels=16)  # as trained on a 16-channel latent space (SD3, Flux)
    sixteen = save_adapter(relabelled, tmp_path / "sixteen", (128, 128))
    cases = [
        (folders[sdxl], embedded_model,
         r"trained for tiny-sdxl \(SDXL\), not for embedded \(Stable Diffusion 1.x/2.x\)"),
        (folders[embedded_model] / "adapter.safetensors", sdxl, r"trained for embedded \(Stable Diffusion 1.x/2.x\), "
                                                                r"not for tiny-sdxl \(SDXL\)"),
        (folders[sd], embedded_model, r"trained for tiny-sd, whose UNet skip channels are \[32, 32, 32, 64\]; "
                                      r"embedded's are \[32, 32, 32, 64, 64, 64\]"),
        (sixteen, embedded_model, "trained for embedded on 16-channel latents; embedded has 4-channel latents"),
    ]
    for adapter, model, message in cases:
        with pytest.raises(InvalidRequest, match=message) as refused:
            load_adapter(adapter, model)
        assert str(tmp_path) not in str(refused.value)
    with pytest.raises(InvalidRequest, match="trained for tiny-sdxl"):  # the tuned mode refuses before sampling
        run(GenerationRequest("a red circle", 128, 128, mode="tuned", adapter=str(folders[sdxl]), steps=2),
            embedded_model, previews=False)
    assert load_adapter(folders[sd], sd).config.base_family == "Stable Diffusion 1.x/2.x"


def test_tuned_runs_the_pivot_encoder_once_per_upper_stage(embedded_model, tmp_path, monkeypatch):
    """Eq. 6 takes the clean pivot's features h_{n,0}: one encoder pass per stage, not one per step."""
    import selfcascade.cascade.pipeline as cascade

    calls = []
    real = cascade.encoder_skips
    monkeypatch.setattr(cascade, "encoder_skips", lambda *args: calls.append(args[2]) or real(*args))
    adapter = save_adapter(new_upsamplers(embedded_model.unet, embedded_model.name), tmp_path / "zero",
                           size=(128, 128), model=embedded_model)
    result = run(GenerationRequest("a small red square", 256, 256, mode="tuned", adapter=str(adapter), steps=10,
                                   strength=0.5, scheduler="ddpm", seed=1), embedded_model, previews=False)
    assert len(result.metadata["stage_sizes"]) == 3
    assert [int(t) for t in calls] == [0, 0]  # stages 1 and 2, at t = 0


def test_adapter_of_the_earlier_per_step_design_is_refused(embedded_model, tmp_path):
    upsamplers = new_upsamplers(embedded_model.unet, embedded_model.name)
    upsamplers.register_to_config(time_conditioning="film")
    folder = save_adapter(upsamplers, tmp_path / "old", size=(128, 128), model=embedded_model)
    with pytest.raises(InvalidRequest, match="earlier version"):
        load_adapter(folder, embedded_model)


def test_phi_splits_into_a_stage_trunk_and_a_step_modulation(embedded_model):
    """residuals() (training, fresh pivot) equals prepare() once + residuals_from() per step (inference)."""
    upsamplers = new_upsamplers(embedded_model.unet, embedded_model.name)
    torch.manual_seed(0)
    for parameter in upsamplers.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    skips = [torch.randn(2, c, 8 // 2**level, 8 // 2**level) for c, level in
             zip(upsamplers.config.skip_channels, upsamplers.config.skip_levels)]
    trunks = upsamplers.prepare(skips, (16, 16))
    for t in (torch.tensor(10), torch.tensor(700)):
        direct, _ = upsamplers.residuals(skips, t, (16, 16))
        staged, _ = upsamplers.residuals_from(trunks, t, (16, 16))
        assert all(torch.allclose(a, b) for a, b in zip(direct, staged))
    early, _ = upsamplers.residuals_from(trunks, torch.tensor(10), (16, 16))
    late, _ = upsamplers.residuals_from(trunks, torch.tensor(700), (16, 16))
    assert not torch.allclose(early[upsamplers.config.skip_indices[0]], late[upsamplers.config.skip_indices[0]])
