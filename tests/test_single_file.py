"""Single-file checkpoints (--model x.safetensors --config FOLDER): a tiny SD 1.x and SDXL pipeline written IN
THE TEST as one file in the original LDM layout (tests.ldm_checkpoint, proven by diffusers' own forward
conversion), loaded through from_single_file, give the same image as their diffusers folders; files that are not
such a checkpoint are one line each. Offline: the configs come from the tiny folders."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from selfcascade.files import hosting
from selfcascade.files.images import read_png_metadata
from selfcascade.models import single_file
from selfcascade.models.availability import ModelUnavailable
from selfcascade.models.loader import load_model
from selfcascade.models.names import public_name
from selfcascade.ui.cli import main
from tests.ldm_checkpoint import (
    XL_OPEN_CLIP,
    check_roundtrip,
    clip_to_ldm,
    open_clip_to_ldm,
    pipeline_to_ldm,
    save_tiny_sdxl_two_widths,
    unet_to_ldm,
    vae_to_ldm,
)
from tests.tiny_components import save_tiny_stable_diffusion

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def _write_checkpoint(pipeline_class, folder: Path, target: Path) -> Path:
    pipeline = pipeline_class.from_pretrained(folder)
    ldm = pipeline_to_ldm(pipeline)
    check_roundtrip(pipeline, ldm)  # the inverse layout, proven by diffusers' LDM -> diffusers conversion
    save_file(ldm, target)
    return target


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    root = tmp_path_factory.mktemp("single-sd")
    folder = save_tiny_stable_diffusion(root)
    return folder, _write_checkpoint(StableDiffusionPipeline, folder, root / "my-sd15-merge.safetensors")


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    root = tmp_path_factory.mktemp("single-sdxl")
    folder = save_tiny_sdxl_two_widths(root)
    return folder, _write_checkpoint(StableDiffusionXLPipeline, folder, root / "my-sdxl.safetensors")


def _cli(*arguments):
    return subprocess.run([sys.executable, "-m", "selfcascade", "generate", "--prompt", "a red circle", "--size",
                           "128x128", "--steps", "3", "--quiet", *arguments], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_cli_single_file_makes_the_folders_image_and_records_the_file_name(sd, tmp_path):
    folder, checkpoint = sd
    from_file = _cli("--model", str(checkpoint), "--config", str(folder), "--out", str(tmp_path / "file.png"))
    from_folder = _cli("--model", str(folder), "--out", str(tmp_path / "folder.png"))
    assert from_file.returncode == 0 and from_folder.returncode == 0, from_file.stderr + from_folder.stderr
    a = np.asarray(Image.open(tmp_path / "file.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "folder.png"), dtype=np.int16)
    assert np.abs(a - b).max() <= 1
    record = read_png_metadata(tmp_path / "file.png")
    assert record["model"] == "my-sd15-merge.safetensors"
    assert str(checkpoint.parent) not in json.dumps(record)  # the file's name, never this machine's path


def test_sdxl_single_file_through_the_library_matches_its_folder(sdxl):
    from selfcascade import SelfCascadePipeline

    folder, checkpoint = sdxl
    arguments = dict(prompt="a red circle", height=128, width=128, num_inference_steps=3, output_type="np")
    from_file = SelfCascadePipeline.from_pretrained(str(checkpoint), config=str(folder))
    assert isinstance(from_file.pipe, StableDiffusionXLPipeline)
    first = from_file(generator=torch.Generator().manual_seed(3), **arguments)
    second = SelfCascadePipeline.from_pretrained(str(folder))(generator=torch.Generator().manual_seed(3), **arguments)
    assert np.abs(first.images - second.images).max() < 1e-4
    assert first.metadata[0]["model"] == "my-sdxl.safetensors"


def _bad_file(kind: str, tmp_path: Path, checkpoint: Path) -> Path:
    if kind == "ckpt":
        path = tmp_path / "old.ckpt"
        path.write_bytes(b"\x80\x02}q\x00.")  # a pickle: never opened
    elif kind == "garbage":
        path = tmp_path / "garbage.safetensors"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        path = tmp_path / "truncated.safetensors"
        path.write_bytes(checkpoint.read_bytes()[:-1000])
    elif kind == "lora":
        path = tmp_path / "style-lora.safetensors"
        save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32),
                   "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(32, 4)}, path)
    elif kind == "tensors":
        path = tmp_path / "tensors.safetensors"
        save_file({"weight": torch.zeros(3, 3)}, path)
    else:
        path = tmp_path / "missing.safetensors"
    return path


BAD_FILES = {"ckpt": ".safetensors only", "garbage": "not a readable .safetensors file",
             "truncated": "not a readable .safetensors file", "lora": "a LoRA, not a model",
             "tensors": "not a Stable Diffusion 1.x/2.x or SDXL checkpoint", "missing": "no such file"}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_file_that_is_no_checkpoint_is_one_line_and_exit_2(sd, tmp_path, capsys, kind):
    folder, checkpoint = sd
    path = _bad_file(kind, tmp_path, checkpoint)
    code = main(["generate", "--model", str(path), "--config", str(folder), "--prompt", "x", "--size", "128x128",
                 "--quiet", "--out", str(tmp_path / "out.png")])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert error.count("\n") == 0 and error.startswith("selfcascade: error: ") and BAD_FILES[kind] in error, error
    assert "Traceback" not in error and not (tmp_path / "out.png").exists()


def test_without_a_config_offline_is_one_line_naming_config(sd, tmp_path, capsys):
    folder, checkpoint = sd  # HF_HUB_OFFLINE=1 (conftest), SD 1.5's configs are not in the cache
    assert main(["generate", "--model", str(checkpoint), "--prompt", "x", "--size", "128x128", "--quiet",
                 "--out", str(tmp_path / "out.png")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "needs the family's configuration: pass --config" in error, error
    assert "offline" in error and "Stable Diffusion 1.x" in error


def test_a_config_of_another_family_or_a_config_without_a_single_file_is_refused(sd, sdxl):
    (sd_folder, sd_file), (xl_folder, xl_file) = sd, sdxl
    with pytest.raises(ModelUnavailable, match="another family"):
        load_model(str(sd_file), config=str(xl_folder))
    with pytest.raises(ModelUnavailable, match="another family"):
        load_model(str(xl_file), config=str(sd_folder))
    with pytest.raises(ModelUnavailable, match="no such folder"):
        load_model(str(sd_file), config=str(sd_folder / "nothing-here"))
    with pytest.raises(Exception, match="only a single-file checkpoint"):
        load_model(str(sd_folder), config=str(sd_folder))


def test_an_oversized_file_is_refused_before_it_is_read(sd, monkeypatch):
    folder, checkpoint = sd
    monkeypatch.setattr(single_file, "MAX_CHECKPOINT_BYTES", 1000)
    with pytest.raises(ModelUnavailable, match="more than a Stable Diffusion or SDXL checkpoint"):
        load_model(str(checkpoint), config=str(folder))


def test_records_and_the_space_rule():
    assert public_name("/home/me/models/Stable-diffusion/dreamshaper_8.safetensors") == "dreamshaper_8.safetensors"
    assert public_name("/tmp/adapters/adapter-1/adapter.safetensors") == "adapter-1/adapter.safetensors"
    assert single_file.is_single_file("/models/x.safetensors") and single_file.is_single_file("x.ckpt")
    assert not single_file.is_single_file("stable-diffusion-v1-5/stable-diffusion-v1-5")


def test_on_a_space_a_hub_shaped_file_name_stays_a_hub_id(monkeypatch):
    from selfcascade.ui.space_policy import check_source

    monkeypatch.setattr(hosting, "ON_SPACE", True)
    assert not single_file.is_single_file("models/x.safetensors")  # owner/name: looked up on the hub, no disk read
    with pytest.raises(Exception, match="server paths are not read"):
        check_source("model", "/root/models/x.safetensors")


def _meta_shapes(module) -> dict:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def _real_layout(unet_config: str, text: str) -> dict:
    """Key names and shapes of a real SD 2.1 or SDXL base checkpoint: UNet and VAE from configs/ (the repository's
    copies of their config.json), the text encoders from their published sizes; built on the meta device."""
    unet_cfg = json.loads((CONFIGS / unet_config).read_text())
    vae_cfg = json.loads((CONFIGS / "sd_vae.json").read_text())
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_cfg)
        vae = AutoencoderKL.from_config(vae_cfg)
        big = dict(vocab_size=49408, max_position_embeddings=77, intermediate_size=5120, num_hidden_layers=32,
                   num_attention_heads=20, hidden_size=1280, projection_dim=1280)
        if text == "sdxl":
            large = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                                 num_hidden_layers=12, num_attention_heads=12))
            encoders = {**clip_to_ldm(_meta_shapes(large), "conditioner.embedders.0.transformer.text_model."),
                        **open_clip_to_ldm(CLIPTextModelWithProjection(CLIPTextConfig(**big)).state_dict(),
                                           XL_OPEN_CLIP)}
        else:  # SD 2.x: OpenCLIP ViT-H, 1024 wide, 24 layers
            h = {**big, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                 "num_attention_heads": 16, "projection_dim": 1024}
            encoders = open_clip_to_ldm(CLIPTextModelWithProjection(CLIPTextConfig(**h)).state_dict(),
                                        "cond_stage_model.model.")
    layout = {**unet_to_ldm(unet.state_dict(), unet_cfg["layers_per_block"]),
              **vae_to_ldm(vae.state_dict(), len(vae_cfg["up_block_types"])), **encoders}
    return {key: tuple(value.shape) if hasattr(value, "shape") else value for key, value in layout.items()}


def test_real_sd21_and_sdxl_layouts_are_recognised_and_variants_refused():
    sd21, xl = _real_layout("sd21_unet.json", "sd2"), _real_layout("sdxl_unet.json", "sdxl")
    assert single_file.checkpoint_family(sd21, "sd21.safetensors") == (single_file.SD, "v2")
    assert single_file.checkpoint_family(xl, "sdxl.safetensors") == (single_file.SDXL, "xl_base")
    conv_in = "model.diffusion_model.input_blocks.0.0.weight"
    inpainting = {**sd21, conv_in: (320, 9, 3, 3)}
    with pytest.raises(ModelUnavailable, match="type inpainting_v2: not supported"):
        single_file.checkpoint_family(inpainting, "inpaint.safetensors")
    refiner = {key: shape for key, shape in xl.items() if not key.startswith("conditioner.embedders.0.")}
    refiner = {key.replace("embedders.1.", "embedders.0."): shape for key, shape in refiner.items()}
    with pytest.raises(ModelUnavailable, match="refiner"):
        single_file.checkpoint_family(refiner, "refiner.safetensors")
