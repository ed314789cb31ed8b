"""The memory plan (estimate, refusal), VAE tiling by size, SDPA attention, offload choice, and an
out-of-memory error that becomes a message while the app keeps working."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from diffusers.models.attention_processor import AttnProcessor

from selfcascade.cascade import estimate
from selfcascade.cascade import pipeline as cascade
from selfcascade.cascade.pipeline import generate, run
from selfcascade.cascade.request import GenerationRequest
from selfcascade.models.loader import load_model
from selfcascade.models.memory import (
    GIB,
    MemoryPlan,
    NotEnoughMemory,
    OutOfMemory,
    check_memory_fits,
    free_memory,
    is_out_of_memory,
    vae_decode_bytes,
)
from selfcascade.models.placement import attention_kinds, use_sdpa, wants_offload
from selfcascade.models.vae import wants_tiles
from selfcascade.ui import handlers

from .tiny_components import save_tiny_sdxl

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def request(**overrides):
    settings = dict(prompt="a large red circle", width=128, height=128, steps=4, strength=0.5, guidance=4.0,
                    scheduler="ddpm")
    settings.update(overrides)
    return GenerationRequest(**settings)


def test_tiling_switches_on_above_1024_squared_unless_overridden():
    assert not wants_tiles("auto", 1024, 1024) and wants_tiles("auto", 2048, 1024)
    assert wants_tiles("on", 64, 64) and not wants_tiles("off", 4096, 4096)


def test_tiled_4096_decode_of_the_sdxl_vae_is_estimated_below_4_gib():
    with torch.device("meta"):
        vae = AutoencoderKL.from_config({**json.loads((CONFIGS / "sd_vae.json").read_text()), "sample_size": 1024})
    untiled = vae_decode_bytes(vae.config, 4096, 4096, 4, tiled=False)
    tiled = vae_decode_bytes(vae.config, 4096, 4096, 4, tiled=True)
    assert untiled > 40 * GIB and tiled < 4 * GIB
    assert vae_decode_bytes(vae.config, 4096, 4096, 2, tiled=False) == pytest.approx(untiled / 2, rel=0.01)


def test_tiled_decode_is_seamless_enough_and_the_same_size(embedded_model):
    latents = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    whole = np.asarray(embedded_model.decode(latents, "off")[0], dtype=np.float32)
    tiled = np.asarray(embedded_model.decode(latents, "on")[0], dtype=np.float32)
    assert whole.shape == tiled.shape == (256, 256, 3)
    assert np.abs(whole - tiled).mean() < 20  # blended tiles: close to the one-piece decode


def test_plan_refuses_with_the_estimate_and_what_to_change():
    plan = MemoryPlan("cuda:0", weights=5 * GIB, unet=3 * GIB, vae=20 * GIB, free=8 * GIB, tiled=False)
    with pytest.raises(NotEnoughMemory) as caught:
        check_memory_fits(plan, torch.float32)
    message = str(caught.value)
    for words in ("20.0 GiB", "8.0 GiB free", "smaller size", "--vae-tiling on", "--offload on", "float16"):
        assert words in message, message
    check_memory_fits(MemoryPlan("cpu", GIB, GIB, GIB, None, False), torch.float32)  # unknown free memory: runs


def test_cascade_refuses_a_run_that_cannot_fit_before_sampling(embedded_model, monkeypatch):
    monkeypatch.setattr(estimate, "free_memory", lambda device: 1024)
    events = generate(request(), embedded_model)
    with pytest.raises(NotEnoughMemory, match="not enough memory"):
        next(events)


def test_estimate_grows_with_size_and_shows_free_memory(embedded_model):
    small = estimate.memory_plan(embedded_model, request(width=128, height=128))
    large = estimate.memory_plan(embedded_model, request(width=512, height=512))
    assert large.unet > 10 * small.unet and small.free > 0
    assert abs(large.free - small.free) < 0.1 * small.free  # the same device (other processes move it a little)
    assert free_memory("cpu") > 0


def test_out_of_memory_becomes_a_message_and_memory_is_freed(embedded_model, monkeypatch):
    calls, freed = [], []
    original = embedded_model.predict_noise

    def runs_out(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(*args, **kwargs)

    monkeypatch.setattr(embedded_model, "predict_noise", runs_out)
    monkeypatch.setattr(cascade, "release_memory", lambda: freed.append(1))
    with pytest.raises(OutOfMemory, match="ran out of memory at 128x128"):
        run(request(), embedded_model)
    assert freed == [1]
    monkeypatch.setattr(embedded_model, "predict_noise", original)
    assert run(request(), embedded_model).image.size == (128, 128)  # the next run works


def test_the_app_reports_out_of_memory_and_keeps_serving(monkeypatch):
    model = load_model(None)  # the one the handler will use (earlier tests may have loaded others)
    original = model.predict_noise
    monkeypatch.setattr(model, "predict_noise",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("CUDA error: out of memory")))
    values = dict(model="embedded", prompt="a red circle", negative="", width=128, height=128, stages="",
                  mode="tuning-free", steps=4, strength=0.5, guidance=4.0, scheduler="ddpm",
                  upper="frequency-split", anchor=1.0, upper_guidance=None, seed=1)
    status = list(handlers.generate_stream(**values))[-1][0]
    assert status.startswith("**Not run:**") and "ran out of memory" in status
    monkeypatch.setattr(model, "predict_noise", original)
    assert list(handlers.generate_stream(**values))[-1][0].startswith("**Done**")


def test_out_of_memory_is_recognised():
    assert is_out_of_memory(torch.OutOfMemoryError("x")) and is_out_of_memory(RuntimeError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("size mismatch"))


def test_attention_goes_through_sdpa(tmp_path):
    model = load_model(str(save_tiny_sdxl(tmp_path)))
    assert attention_kinds(model.unet) == {"AttnProcessor2_0"}
    assert attention_kinds(model.vae) == {"AttnProcessor2_0"}
    model.unet.set_attn_processor(AttnProcessor())  # a folder that asked for the old, non-SDPA one
    use_sdpa(model.pipeline)
    assert attention_kinds(model.unet) == {"AttnProcessor2_0"}


def test_offload_only_on_a_gpu_and_when_memory_is_short():
    assert not wants_offload("auto", 10 * GIB, 64 * GIB, None)
    assert not wants_offload("on", 10 * GIB, 64 * GIB, None)  # CPU: nothing to offload to
    assert wants_offload("auto", 7 * GIB, 8 * GIB, "cuda")
    assert not wants_offload("auto", 7 * GIB, 24 * GIB, "cuda")
    assert wants_offload("on", 1 * GIB, 24 * GIB, "cuda") and not wants_offload("off", 7 * GIB, 8 * GIB, "cuda")
