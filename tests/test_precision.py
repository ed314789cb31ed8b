"""float16 on the CPU: every mode on SD 1.x-, SD 2.x (v-prediction)- and SDXL-shaped tiny pipelines gives
finite images; a VAE that overflows in float16 is run in float32 when its config says force_upcast, and
stops the run with a clear message when it does not (never a black PNG)."""

import numpy as np
import pytest
import torch

from selfcascade.adapters.files import save_adapter
from selfcascade.adapters.upsampler import new_upsamplers
from selfcascade.cascade.pipeline import run
from selfcascade.cascade.request import GenerationRequest
from selfcascade.errors import InvalidRequest
from selfcascade.models.loader import load_model
from selfcascade.models.precision import NonFiniteResult, resolve_dtype

from .tiny_components import make_vae_overflow_in_float16, save_tiny_sdxl, save_tiny_stable_diffusion

FAMILIES = {"sd1": lambda folder: save_tiny_stable_diffusion(folder),
            "sd2-v": lambda folder: save_tiny_stable_diffusion(folder, "v_prediction"),
            "sdxl": save_tiny_sdxl}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {name: make(tmp_path_factory.mktemp(name)) for name, make in FAMILIES.items()}


def request(mode="tuning-free", **overrides):
    settings = dict(prompt="a red circle", width=128, height=128, mode=mode, steps=2, strength=0.5,
                    guidance=5.0, scheduler="ddim", dtype="float16")
    settings.update(overrides)
    return GenerationRequest(**settings)


def assert_real_image(image, size=(128, 128)):
    pixels = np.asarray(image)
    assert image.size == size and pixels.std() > 0  # not a constant (black) picture


def test_auto_is_float32_on_cpu_and_float16_on_a_gpu():
    assert resolve_dtype("auto", None) == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.float16
    assert resolve_dtype("bfloat16") == torch.bfloat16
    with pytest.raises(InvalidRequest, match="unknown dtype"):
        resolve_dtype("float8")
    with pytest.raises(InvalidRequest, match="unknown dtype"):
        GenerationRequest("x", 64, 64, dtype="half").check()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["tuning-free", "tuned", "direct", "hires-fix"])
def test_every_mode_runs_in_float16_on_cpu(folders, tmp_path, family, mode):
    model = load_model(str(folders[family]), dtype="float16")
    assert model.dtype == torch.float16
    adapter = None
    if mode == "tuned":
        adapter = str(save_adapter(new_upsamplers(model.unet, family), tmp_path / "adapter", (128, 128), model))
    result = run(request(mode, adapter=adapter), model)
    assert_real_image(result.image)
    assert result.metadata["dtype_used"] == "float16"


def test_force_upcast_vae_decodes_in_float32_and_gives_a_real_image(tmp_path):
    folder = make_vae_overflow_in_float16(save_tiny_sdxl(tmp_path), force_upcast=True)
    model = load_model(str(folder), dtype="float16")
    assert model.dtype == torch.float16 and model.vae.dtype == torch.float32
    result = run(request(), model)
    assert_real_image(result.image)
    assert result.metadata["vae_dtype"] == "float32"


def test_the_same_vae_without_upcast_stops_with_the_cause(tmp_path):
    folder = make_vae_overflow_in_float16(save_tiny_sdxl(tmp_path), force_upcast=False)
    model = load_model(str(folder), dtype="float16")
    assert model.vae.dtype == torch.float16
    with pytest.raises(NonFiniteResult) as caught:
        run(request(), model)
    message = str(caught.value)
    assert "decoded pixels" in message and "VAE overflowed in float16" in message
    assert "--dtype float32" in message and "sdxl-vae-fp16-fix" in message


def test_a_replacement_vae_is_used(tmp_path):
    """--vae: a VAE folder (here the overflowing one, but marked safe) replaces the model's own."""
    source = make_vae_overflow_in_float16(save_tiny_sdxl(tmp_path / "a"), force_upcast=False)
    model = load_model(str(save_tiny_sdxl(tmp_path / "b")), dtype="float16", vae=str(source / "vae"))
    assert model.vae.dtype == torch.float16
    assert float(model.vae.decoder.conv_in.weight.abs().max()) > 1000  # the replacement's weights
    with pytest.raises(NonFiniteResult, match="VAE overflowed"):
        run(request(), model)


def test_nan_latents_stop_the_run_after_the_stage(folders):
    model = load_model(str(folders["sd1"]), dtype="float32")
    original = model.unet.conv_out.bias.clone()
    try:
        with torch.no_grad():
            model.unet.conv_out.bias.fill_(float("nan"))
        with pytest.raises(NonFiniteResult, match=r"latents after stage 1 \(64x64\)"):
            run(request(dtype="float32"), model)
    finally:
        with torch.no_grad():
            model.unet.conv_out.bias.copy_(original)
