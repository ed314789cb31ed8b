"""Upper-stage denoising strategies: the sub-lattice algebra, and every strategy in every mode on every
model family the project loads (the embedded model, tiny SD 1.x-, SD 2.x v-prediction- and SDXL-shaped
pipelines built offline)."""

import json

import numpy as np
import pytest
import torch

from selfcascade.adapters.upsampler import new_upsamplers
from selfcascade.cascade.pipeline import StageStarted, generate, run
from selfcascade.cascade.plan import resolve_run
from selfcascade.cascade.presets import load_presets, parse_preset
from selfcascade.cascade.request import GenerationRequest
from selfcascade.diffusion.upper_stage import (
    STRATEGIES,
    STRATEGY_ALIASES,
    canonical_strategy,
    from_sublattices,
    gaussian_blur,
    redilated_convolutions,
    relative_cost,
    stage_scale,
    to_sublattices,
    window_origins,
)
from selfcascade.errors import InvalidRequest
from selfcascade.files.images import read_png_metadata
from selfcascade.models.loader import load_model
from selfcascade.ui.cli import main as cli_main

from .tiny_components import save_tiny_sdxl, save_tiny_stable_diffusion


@pytest.mark.parametrize("size, scale", [((16, 16), (2, 2)), ((13, 22), (3, 2)), ((8, 12), (1, 3))])
def test_sublattices_round_trip_and_interleave(size, scale):
    latents = torch.randn(2, 4, *size)
    views = to_sublattices(latents, scale, multiple=4)
    assert views.shape[0] == 2 * scale[0] * scale[1] and views.shape[-1] % 4 == 0
    assert torch.equal(from_sublattices(views, scale, size), latents)
    # view (i, j) of image 0 holds latents[..., i::sr, j::sc]; views are view-major (frames stay together)
    i, j = scale[0] - 1, scale[1] - 1
    view = views[(i * scale[1] + j) * 2]
    expected = latents[0, :, i::scale[0], j::scale[1]]
    assert torch.equal(view[:, :expected.shape[1], :expected.shape[2]], expected)


def test_stage_scale_and_windows_cover_everything():
    assert stage_scale((64, 64), (16, 16)) == (4, 4)
    assert stage_scale((12, 24), (16, 16)) == (1, 1)  # a 96x48 stage 0: near the native area, not 2x wide
    assert stage_scale((32, 64), (16, 16)) == (3, 3)  # 256x128: views keep the 2:1 aspect
    assert stage_scale((48, 64), (16, 16)) == (3, 3)
    assert stage_scale((40, 72), (40, 72)) == (1, 1)  # a non-square native size (zeroscope's 576x320)
    assert stage_scale((80, 144), (40, 72)) == (2, 2)
    for size in (16, 40, 64, 70):
        origins = window_origins(size, 16)
        covered = np.zeros(size, bool)
        for start in origins:
            covered[start:start + 16] = True
        assert covered.all() and origins[-1] + 16 == max(size, 16)


def test_gaussian_blur_keeps_constants_and_smooths_noise():
    flat = torch.full((1, 4, 20, 20), 0.7)
    assert torch.allclose(gaussian_blur(flat, 2.0), flat, atol=1e-6)
    noise = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    assert gaussian_blur(noise, 2.0).std() < 0.4 * noise.std()


def test_redilated_convolutions_are_restored(embedded_model):
    unet = embedded_model.unet
    before = [(m.dilation, m.padding) for m in unet.modules() if isinstance(m, torch.nn.Conv2d)]
    with redilated_convolutions(unet, (2, 2), lowpass=True):
        assert any(m.dilation == (2, 2) for m in unet.modules() if isinstance(m, torch.nn.Conv2d))
    assert before == [(m.dilation, m.padding) for m in unet.modules() if isinstance(m, torch.nn.Conv2d)]


def _request(**overrides):
    settings = dict(prompt="a large red circle on a white background", width=128, height=128, steps=6,
                    strength=0.5, guidance=4.0, scheduler="ddpm", seed=5)
    settings.update(overrides)
    return GenerationRequest(**settings)


def test_strategies_differ_and_are_recorded(embedded_model):
    images = {}
    for name in STRATEGIES:  # a 4x target, where the RAU-Net strategies use RAU-Net calls
        result = run(_request(upper=name, width=256, height=256, stages="64,256"), embedded_model, previews=False)
        assert result.metadata["upper_stage"] == ["-", name]
        images[name] = np.asarray(result.image, dtype=np.float32)
        assert np.isfinite(images[name]).all()
    names = list(images)
    for a in names:  # every strategy changes the upper stage: none is silently the plain call
        for b in names[names.index(a) + 1:]:
            assert np.abs(images[a] - images[b]).mean() > 0.2, (a, b)


def test_default_strategy_comes_from_the_model_and_direct_stays_plain(embedded_model):
    starts = [e for e in generate(_request(), embedded_model, previews=False) if isinstance(e, StageStarted)]
    assert [s.strategy for s in starts] == ["-", embedded_model.default_upper_stage]
    assert run(_request(mode="direct"), embedded_model, previews=False).metadata["upper_stage"] == ["plain"]


def test_earlier_names_are_aliases_of_the_paper_names(tmp_path, embedded_model):
    assert STRATEGY_ALIASES == {"rau-pyramid": "hidiffusion-pyramid", "rau": "hidiffusion", "dilated": "demofusion",
                                "redilated": "scalecrafter"}
    assert set(STRATEGY_ALIASES.values()) <= set(STRATEGIES) and not set(STRATEGY_ALIASES) & set(STRATEGIES)
    for old, new in STRATEGY_ALIASES.items():
        request = _request(upper=old)
        assert request.upper == new  # normalised on construction
        request.check()
        assert request.to_metadata()["upper"] == new
        later = _request()
        later.upper = old  # set after construction: check() normalises it too
        later.check()
        assert later.upper == new and resolve_run(later, embedded_model).strategy == new
        assert canonical_strategy(old) == new and relative_cost(old) == relative_cost(new)
    assert canonical_strategy("plain") == "plain" and canonical_strategy(None) is None
    assert canonical_strategy(["rau"]) == ["rau"]  # a hostile type is left for the check to refuse
    with pytest.raises(InvalidRequest, match="upper must be text"):
        _request(upper=["rau"]).check()
    preset = {"name": "old", "width": 256, "height": 256, "upper": "rau-pyramid"}
    assert parse_preset(preset, "old.json").settings["upper"] == "hidiffusion-pyramid"
    assert {preset.settings.get("upper") for preset in load_presets().values()} <= set(STRATEGIES)


def test_unknown_strategy_is_a_clear_message():
    with pytest.raises(InvalidRequest, match="upper-stage strategy"):
        _request(upper="sideways").check()


def test_cli_upper_flag_reaches_the_png(tmp_path, capsys):
    out = tmp_path / "a.png"
    code = cli_main(["generate", "--prompt", "a blue square", "--size", "128x128", "--steps", "4",
                     "--upper", "redilated", "--out", str(out)])
    assert code == 0 and read_png_metadata(out)["upper_stage"] == ["-", "scalecrafter"]  # the earlier name's
    assert "scalecrafter" in capsys.readouterr().err
    with pytest.raises(SystemExit) as error:
        cli_main(["generate", "--prompt", "x", "--size", "128x128", "--upper", "nope", "--out", str(out)])
    assert error.value.code == 2


def _v_prediction_copy(folder):
    """The tiny SD folder turned SD-2.x-like: a v-prediction scheduler config."""
    config_path = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config["prediction_type"] = "v_prediction"
    config_path.write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def tiny_families(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {
        "sd1": save_tiny_stable_diffusion(root / "sd1"),
        "sd2-v": _v_prediction_copy(save_tiny_stable_diffusion(root / "sd2")),
        "sdxl": save_tiny_sdxl(root / "sdxl"),
    }


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_every_strategy_and_mode_on_every_family(family, tiny_families, tmp_path):
    model = load_model(str(tiny_families[family]))
    upsamplers = new_upsamplers(model.unet, model.name)
    with torch.no_grad():  # a non-zero adapter, so the tuned residuals really enter the UNet
        for level in upsamplers.levels:
            level.gain.fill_(0.5)
    adapter = tmp_path / "adapter"
    from selfcascade.adapters.files import save_adapter

    save_adapter(upsamplers, str(adapter), size=(128, 128), model=model)
    for name in STRATEGIES:
        for mode in ("tuning-free", "tuned", "hires-fix"):
            result = run(GenerationRequest("a red circle", 256, 128, mode=mode, steps=3, strength=0.7,
                                           guidance=5.0, upper=name, adapter=str(adapter) if mode == "tuned"
                                           else None), model, previews=False)
            assert result.image.size == (256, 128)
            assert result.metadata["upper_stage"][1:] == [name] * (len(result.metadata["upper_stage"]) - 1)
            assert np.isfinite(np.asarray(result.image, dtype=np.float32)).all()
