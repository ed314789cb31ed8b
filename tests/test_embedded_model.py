import os
from pathlib import Path

from diffusers import StableDiffusionPipeline

from selfcascade.models.loader import EMBEDDED_MODEL


def test_loads_offline_through_from_pretrained():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    pipeline = StableDiffusionPipeline.from_pretrained(EMBEDDED_MODEL, use_safetensors=True)
    assert pipeline.unet.config.sample_size * 4 == 64  # base size 64 px, 4x VAE
    assert pipeline.vae.config.latent_channels == 4
    tokens = pipeline.tokenizer("a large red circle on a gray background").input_ids
    assert len(tokens) == 10  # one token a word, plus start and end


def test_weights_are_safetensors_and_small():
    files = [p for p in Path(EMBEDDED_MODEL).rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20


def test_generates_the_prompt_at_base_size(embedded_model):
    from selfcascade.cascade.pipeline import run
    from selfcascade.cascade.request import GenerationRequest
    from selfcascade.shapes.detector import check
    from selfcascade.shapes.world import parse_prompt

    prompts = ["a large red circle", "a large blue square on a white background", "a large green triangle",
               "a small yellow circle on a black background"]
    correct = 0
    for seed, prompt in enumerate(prompts):
        result = run(GenerationRequest(prompt, 64, 64, steps=20, scheduler="ddpm", seed=seed), embedded_model)
        correct += check(result.image, parse_prompt(prompt)).correct
    assert correct >= 3


def test_training_script_continues_on_several_canvases(tmp_path):
    """train_default --resume --canvases: batches of non-square canvases reach the UNet and a folder loads."""
    import pytest

    from selfcascade.shapes.train_default import main, parse_canvases

    assert parse_canvases("64x64,96x48") == [(64, 64), (96, 48)]
    with pytest.raises(SystemExit, match="multiples of 16"):
        parse_canvases("64x50")
    out = tmp_path / "model"
    main(["--resume", str(EMBEDDED_MODEL), "--out", str(out), "--data", "16", "--unet-steps", "3", "--batch", "2",
          "--canvases", "64x64,96x48"])
    pipeline = StableDiffusionPipeline.from_pretrained(out, use_safetensors=True)
    assert pipeline.unet.config.sample_size * 4 == 64
    import json

    log = json.loads((out / "training_log.json").read_text())
    assert log["args"]["canvases"] == "64x64,96x48" and len(log["unet"]) == 1 and "resumed_from" in log


def test_training_script_keeps_a_given_vae(tmp_path):
    """train_default --vae-from: a new UNet on another folder's VAE, which is saved unchanged (same latent space,
    same scaling factor), so the folder's adapters and measurements of the VAE still hold."""
    import pytest
    import torch
    from diffusers import AutoencoderKL

    from selfcascade.shapes.train_default import main

    out = tmp_path / "model"
    main(["--vae-from", str(EMBEDDED_MODEL), "--out", str(out), "--data", "16", "--unet-steps", "2", "--batch", "2",
          "--canvases", "64x64,96x48"])
    kept, given = (AutoencoderKL.from_pretrained(folder, subfolder="vae") for folder in (out, EMBEDDED_MODEL))
    assert kept.config.scaling_factor == given.config.scaling_factor
    assert all(torch.equal(a, b) for a, b in zip(kept.state_dict().values(), given.state_dict().values()))
    with pytest.raises(SystemExit):
        main(["--vae-from", str(EMBEDDED_MODEL), "--resume", str(EMBEDDED_MODEL), "--out", str(out)])


def test_training_script_builds_a_finer_latent_with_a_shifted_schedule(tmp_path):
    """train_default --latent-scale 2 --snr-shift 4: a 32 x 32 latent at 64 px, sizes still multiples of 16, and a
    scheduler whose SNR is a quarter of Stable Diffusion's at every t, saved so that the folder's samplers use it."""
    import pytest

    from selfcascade.cascade.pipeline import run
    from selfcascade.cascade.request import GenerationRequest
    from selfcascade.models.loader import load_model
    from selfcascade.shapes.train_default import main, noise_schedule

    plain, shifted = (noise_schedule(shift).alphas_cumprod.double() for shift in (1.0, 4.0))
    assert (shifted / (1 - shifted)).tolist() == pytest.approx((plain / (1 - plain) / 4).tolist(), rel=1e-4)
    out = tmp_path / "model"
    main(["--out", str(out), "--latent-scale", "2", "--snr-shift", "4", "--data", "16", "--vae-steps", "2",
          "--unet-steps", "2", "--batch", "2"])
    model = load_model(str(out))
    assert model.vae_scale_factor == 2 and model.native_latent_size == (32, 32) and model.size_multiple == 16
    assert model.scheduler_config["trained_betas"] is not None
    for scheduler in ("ddpm", "ddim"):  # both rebuilt from the folder's config, shifted betas included
        request = GenerationRequest(prompt="a red circle", width=128, height=128, steps=2, seed=0, scheduler=scheduler)
        assert run(request, model).image.size == (128, 128)


def test_decoder_fine_tune_with_smooth_latent_noise_writes_a_new_folder(tmp_path):
    """train_decoder --latent-noise --out: the perturbation is smooth and bounded by the asked size, only the
    decoder of the copy changes, and the source folder is left as it was."""
    import torch
    from diffusers import AutoencoderKL

    from selfcascade.shapes.train_decoder import main, smooth_latent_noise

    noise = smooth_latent_noise(torch.Size((64, 4, 16, 16)), 0.5, 2.0, torch.Generator().manual_seed(0))
    per_sample = noise.flatten(1).std(dim=1)
    assert 0 < per_sample.max() <= 0.5 * 2.0 * 1.5 and per_sample.min() < per_sample.max() / 4  # uniform scales
    steps = (noise.diff(dim=-1).abs().mean(), noise.abs().mean())
    assert steps[0] < steps[1] / 2  # neighbours move together (white noise: 1.4x, not 0.5x)
    out, source_log = tmp_path / "model", (Path(EMBEDDED_MODEL) / "training_log.json").read_text()
    main(["--model", str(EMBEDDED_MODEL), "--out", str(out), "--steps", "2", "--batch", "2", "--pool", "4",
          "--sizes", "64", "--latent-noise", "0.4"])
    tuned, shipped = (AutoencoderKL.from_pretrained(folder, subfolder="vae") for folder in (out, EMBEDDED_MODEL))
    changed = {name for name, value in tuned.state_dict().items() if not torch.equal(value, shipped.state_dict()[name])}
    assert changed and all(name.startswith(("decoder.", "post_quant_conv.")) for name in changed)
    assert StableDiffusionPipeline.from_pretrained(out, use_safetensors=True).unet is not None
    assert (Path(EMBEDDED_MODEL) / "training_log.json").read_text() == source_log  # the source is untouched
    assert "latent_noise" in (out / "training_log.json").read_text()


def test_zoom_crops_are_close_ups_that_cut_the_outline():
    """zoom_crops: 64 px windows of scenes rendered 2x and 4x larger, most of them holding object and background."""
    import torch

    from selfcascade.shapes.world import COLOURS
    from selfcascade.shapes.zoom_crops import zoom_crops

    images, scenes = zoom_crops(40, seed=3)
    assert images.shape == (40, 3, 64, 64) and len(scenes) == 40
    assert images.min() >= -1 and images.max() <= 1
    cut = 0
    for image, scene in zip(images, scenes):
        colour = torch.tensor(COLOURS[scene.colour], dtype=torch.float32)[:, None, None] / 127.5 - 1
        share = ((image - colour).abs().amax(dim=0) < 0.05).float().mean()
        cut += bool(0.05 < share < 0.95)
    assert cut >= 24  # EDGE_SHARE (0.8) of them are chosen to cut the outline


def test_training_script_trains_close_ups_at_low_noise_only(tmp_path, monkeypatch):
    """train_default --zoom-share: that share of the steps draws from the close-up crops, with timesteps below
    --zoom-max-t; the other steps use the whole scenes and the full schedule."""
    import json

    import torch

    from selfcascade.shapes import train_default

    seen = []
    real_randint = torch.randint

    def recording_randint(low, high, size, *args, **kwargs):
        if size == (2,) and low == 0 and high in (50, 1000):
            seen.append(high)
        return real_randint(low, high, size, *args, **kwargs)

    monkeypatch.setattr(train_default.torch, "randint", recording_randint)
    out = tmp_path / "model"
    train_default.main(["--resume", str(EMBEDDED_MODEL), "--out", str(out), "--data", "16", "--unet-steps", "12",
                        "--batch", "2", "--zoom-share", "0.5", "--zoom-max-t", "50", "--zoom-data", "8"])
    assert 50 in seen and 1000 in seen  # both kinds of step ran, each with its own timestep range
    log = json.loads((out / "training_log.json").read_text())
    assert log["args"]["zoom_share"] == 0.5 and len(log["unet"]) == 1
    assert StableDiffusionPipeline.from_pretrained(out, use_safetensors=True).unet is not None
