"""SelfCascadePipeline.from_pipe on the user's own tiny SD 1.x and SDXL pipelines (random weights, built offline),
with LoRAs made with peft in the test; `--lora` from the command line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from selfcascade import InvalidRequest, SelfCascadePipeline
from selfcascade.files.images import read_png_metadata

from .cli_runner import run_cli
from .tiny_components import save_tiny_sdxl, save_tiny_stable_diffusion

FAMILIES = {"sd": (save_tiny_stable_diffusion, StableDiffusionPipeline),
            "sdxl": (save_tiny_sdxl, StableDiffusionXLPipeline)}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
    """(name, model folder, pipeline class, LoRA folder) of one tiny family."""
    save, pipeline_class = FAMILIES[request.param]
    folder = save(tmp_path_factory.mktemp(request.param) / "model")
    return request.param, folder, pipeline_class, save_lora(folder, pipeline_class, tmp_path_factory.mktemp("lora"))


def save_lora(model_folder, pipeline_class, out_dir):
    """A random (non-zero) LoRA on the UNet's attention projections, saved the way diffusers' trainers do."""
    torch.manual_seed(1)
    unet = UNet2DConditionModel.from_pretrained(model_folder / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    pipeline_class.save_lora_weights(out_dir, unet_lora_layers=layers, safe_serialization=True)
    return out_dir


def _call(cascade, **kwargs):
    settings = dict(height=128, width=128, num_inference_steps=3, generator=torch.Generator().manual_seed(7))
    return cascade("a red circle", **{**settings, **kwargs})


def test_from_pipe_shares_the_users_components_and_returns_the_requested_images(family):
    name, folder, pipeline_class, _ = family
    pipe = pipeline_class.from_pretrained(folder)
    cascade = SelfCascadePipeline.from_pipe(pipe)
    assert cascade.model.unet is pipe.unet and cascade.model.vae is pipe.vae and cascade.pipe is pipe
    native = pipe.unet.config.sample_size * pipe.vae_scale_factor  # read from the config: 64 for these
    assert cascade.model.base_size == (native, native)
    steps = []
    out = _call(cascade, num_images_per_prompt=2, width=2 * native, height=native,
                callback_on_step_end=lambda p, step, t, kwargs: steps.append((step, t, kwargs["latents"].shape)))
    assert [image.size for image in out.images] == [(2 * native, native)] * 2
    assert [record["seed"] for record in out.metadata] == [7, 8]  # image k: the generator's seed + k
    assert len(out.metadata[0]["stage_sizes"]) >= 2  # a cascade, not one direct call
    assert steps and steps[0][0] == 0 and all(isinstance(t, int) for _, t, _ in steps)
    assert not np.array_equal(np.asarray(out.images[0]), np.asarray(out.images[1]))
    as_array = _call(cascade, output_type="np")
    assert as_array.images.shape == (1, 128, 128, 3) and 0 <= as_array.images.min() <= as_array.images.max() <= 1
    latents = _call(cascade, output_type="latent")
    assert latents.images.shape[-2:] == (128 // pipe.vae_scale_factor,) * 2


def test_a_lora_loaded_on_the_users_pipeline_changes_every_stage(family):
    name, folder, pipeline_class, lora = family
    pipe = pipeline_class.from_pretrained(folder)
    cascade = SelfCascadePipeline.from_pipe(pipe)
    before = np.asarray(_call(cascade).images[0], dtype=np.int16)
    pipe.load_lora_weights(lora)
    after = np.asarray(_call(cascade).images[0], dtype=np.int16)
    assert np.abs(after - before).mean() > 1.0  # the LoRA reaches the cascade's UNet calls
    off = np.asarray(_call(cascade, cross_attention_kwargs={"scale": 0.0}).images[0], dtype=np.int16)
    assert np.abs(off - before).max() <= 1  # scale 0 in every stage: the model without it


def test_from_pipe_refuses_what_is_not_sd_or_sdxl():
    with pytest.raises(InvalidRequest, match="StableDiffusionPipeline or StableDiffusionXLPipeline, not a dict"):
        SelfCascadePipeline.from_pipe({})


def test_bad_call_arguments_are_one_line(family):
    cascade = SelfCascadePipeline.from_pipe(family[2].from_pretrained(family[1]))
    for kwargs, message in (({"num_images_per_prompt": 0}, "num"), ({"output_type": "pt"}, "output_type"),
                            ({"height": -128}, "size"), ({"generator": None, "seed": -1}, "seed"),
                            ({"prompt": []}, "no prompt")):
        arguments = {"prompt": "a red circle", "height": 128, "width": 128, **kwargs}
        with pytest.raises(InvalidRequest, match=message):
            cascade(**arguments)


ROOT = Path(__file__).resolve().parents[1]


def _cli(*arguments, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "selfcascade", "generate", *arguments], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_cli_lora_changes_the_image_and_is_recorded(family, tmp_path):
    name, folder, _, lora = family
    common = ["--model", str(folder), "--prompt", "a red circle", "--size", "128x128", "--steps", "3",
              "--quiet"]
    plain = _cli(*common, "--out", str(tmp_path / "plain.png"))
    with_lora = _cli(*common, "--lora", f"{lora}:0.8", "--out", str(tmp_path / "lora.png"))
    assert plain.returncode == 0 and with_lora.returncode == 0, plain.stderr + with_lora.stderr
    from PIL import Image

    a = np.asarray(Image.open(tmp_path / "plain.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "lora.png"), dtype=np.int16)
    assert np.abs(a - b).mean() > 1.0
    record = read_png_metadata(tmp_path / "lora.png")
    assert record["loras"] == [{"name": lora.name, "scale": 0.8}]
    assert str(tmp_path) not in json.dumps(record["loras"])  # a public name, never the server path


def test_cli_refuses_a_lora_of_another_family_or_a_damaged_one(family, tmp_path, tmp_path_factory, capsys):
    name, folder, _, _ = family
    other = "sdxl" if name == "sd" else "sd"
    other_save, other_class = FAMILIES[other]
    other_lora = save_lora(other_save(tmp_path_factory.mktemp(other) / "model"), other_class, tmp_path / "other")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "pytorch_lora_weights.safetensors").write_bytes(b"not a safetensors file" * 10)
    common = ["--model", str(folder), "--prompt", "a red circle", "--size", "128x128", "--steps", "2", "--quiet"]
    # The first two in a process of their own: what the libraries print while loading counts against the line.
    for lora in (other_lora, damaged):
        done = _cli(*common, "--lora", str(lora), "--out", str(tmp_path / "x.png"))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and "LoRA" in lines[0], done.stderr
        assert not (tmp_path / "x.png").exists()
    capsys.readouterr()  # what building the test's models printed
    for bad in (str(tmp_path / "missing"), "x:nan", "x:99", ""):  # refused before any loading: in this process
        code, _, err = run_cli(capsys, *common, "--lora", bad, "--out", tmp_path / "x.png")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "x.png").exists()
