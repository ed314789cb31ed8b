"""PNG metadata other tools read: A1111's `parameters` text beside this app's JSON, and both read back."""

import json

import pytest
from PIL import Image, PngImagePlugin

from selfcascade import GenerationRequest, run
from selfcascade.cascade.record import request_from_metadata
from selfcascade.errors import InvalidRequest
from selfcascade.files.a1111 import MAX_PARAMETERS_CHARS, from_a1111, to_a1111
from selfcascade.files.images import read_png_metadata, save_png
from selfcascade.ui.handlers import reuse_settings

A1111_TEXT = """masterpiece, a red circle, {red|blue}
on a white background
Negative prompt: lowres, blurry
Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x768, \
Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, VAE: vae-ft-mse.safetensors, \
Lora hashes: "x: 1a2b, y: 3c4d", Version: v1.10.1"""


def png_with_text(path, **chunks):
    """A small PNG with these text chunks (what A1111, or an earlier version of this app, wrote)."""
    info = PngImagePlugin.PngInfo()
    for key, text in chunks.items():
        info.add_text(key, text)
    Image.new("RGB", (32, 32), "white").save(path, format="PNG", pnginfo=info)
    return path


def test_a_run_saved_as_png_carries_a1111_parameters_and_its_json(embedded_model, tmp_path):
    request = GenerationRequest("a red circle on white", 128, 128, negative_prompt="blurry, dark", steps=4, seed=7,
                                scheduler="ddim", upper="plain", anchor=0.25)
    result = run(request, embedded_model, previews=False)
    path = save_png(result.image, tmp_path / "run.png", result.metadata)
    with Image.open(path) as image:
        parameters, record = image.info["parameters"], image.info["selfcascade"]
    assert json.loads(record) == result.metadata  # the full record, as JSON
    prompt, negative, pairs = parameters.split("\n")
    assert prompt == "a red circle on white" and negative == "Negative prompt: blurry, dark"
    for expected in ("Steps: 4", "Sampler: DDIM", "CFG scale: 4.0", "Seed: 7", "Size: 128x128", "Model: embedded",
                     "Denoising strength: 0.5", "Self-Cascade mode: tuning-free", "Self-Cascade upper stage: plain",
                     "Self-Cascade stages: 64x64 128x128", "Self-Cascade pivot anchor: 0.25"):
        assert expected in pairs.split(", "), expected
    assert request_from_metadata(read_png_metadata(path)) == request  # from the JSON
    assert request_from_metadata(from_a1111(parameters)) == request  # and from the A1111 text alone
    values = reuse_settings(str(path))  # the app's "Reuse the settings of a PNG"
    assert values[1] == "a red circle on white" and values[-1].startswith("Settings of run.png loaded (seed 7")


def test_the_model_own_scheduler_writes_no_sampler_and_defaults_are_left_out():
    text = to_a1111({"prompt": "a square", "width": 64, "height": 64, "steps": 3, "scheduler": None, "seed": 0,
                     "guidance": 4.0, "dtype": "auto", "vae_tiling": "auto", "offload": "auto", "negative_prompt": ""})
    assert text == "a square\nSteps: 3, CFG scale: 4.0, Seed: 0, Size: 64x64"


def test_values_with_commas_and_colons_are_quoted_and_loras_round_trip():
    record = {"prompt": "a circle", "width": 64, "height": 64, "seed": 1, "steps": 2, "stages": "64, 128",
              "adapter": "adapter-1/adapter.safetensors", "tuning": {"frequency_split_refresh": 2},
              "loras": [{"name": "shapes:v2", "scale": 0.8}, {"name": "outline", "scale": 1.0}]}
    text = to_a1111(record)
    assert 'Self-Cascade stage list: "64, 128"' in text and 'Lora: "shapes:v2:0.8, outline:1.0"' in text
    back = from_a1111(text)
    assert {key: back[key] for key in record} == record


def test_an_a1111_png_reads_back_into_a_request(tmp_path):
    path = png_with_text(tmp_path / "a1111.png", parameters=A1111_TEXT)
    metadata = read_png_metadata(path)
    request = request_from_metadata(metadata)
    assert request.prompt == "masterpiece, a red circle, {red|blue}\non a white background"
    assert request.negative_prompt == "lowres, blurry"
    assert (request.steps, request.guidance, request.seed, request.width, request.height) == (20, 7.0, 1234, 512, 768)
    assert request.scheduler == "dpm++"
    assert request.model is None and request.vae is None  # A1111's checkpoint names: nothing this app loads
    status = reuse_settings(str(path))[-1]
    assert status.startswith("Settings of a1111.png loaded (seed 1234, 512x768)")


def test_a_png_of_before_with_json_in_both_chunks_reads_back(tmp_path):
    old = {"prompt": "a large red circle", "width": 128, "height": 128, "mode": "tuning-free", "steps": 3,
           "strength": 0.5, "guidance": 4.0, "seed": 9, "scheduler": None, "stages": "", "negative_prompt": "",
           "model": "embedded", "upper": None, "stage_sizes": ["64x64", "128x128"], "seconds": 1.0}
    text = json.dumps(old, sort_keys=True)
    both = png_with_text(tmp_path / "before.png", selfcascade=text, parameters=text)
    only_parameters = png_with_text(tmp_path / "parameters-only.png", parameters=text)
    for path in (both, only_parameters):
        assert read_png_metadata(path) == old
        request = request_from_metadata(read_png_metadata(path))
        assert (request.prompt, request.seed, request.steps, request.width) == ("a large red circle", 9, 3, 128)


@pytest.mark.parametrize("text, word", [
    ("a circle\nSteps: many, CFG scale: 7, Seed: 1, Size: 64x64", "Steps must be a whole number"),
    ("a circle\nSteps: 20, CFG scale: 7, Seed: 1, Size: huge", "Size must be WIDTHxHEIGHT"),
    ("a circle\nSteps: 20, CFG scale: nan, Seed: 1, Size: 64x64", "CFG scale must be a number"),
    ("a circle\nSteps: 20, CFG scale: 7, Seed: 1000000000000000000000000000000, Size: 64x64", "seed must be"),
    ("a circle\nSteps: 20, CFG scale: 7, Seed: -3, Size: 64x64", "seed must be"),
    ("a circle\nSteps: 0, CFG scale: 7, Seed: 1, Size: 64x64", "steps must be"),
    ("a circle\nSteps: 20, CFG scale: 700, Seed: 1, Size: 64x64", "guidance must be"),
    ("a circle\nSteps: 20, CFG scale: 7, Seed: 1, Size: 64x99999999", "size"),
    ("just a prompt, no settings", "carries no"),
    ("x" * 100_000, "characters long"),
    ("a circle\nSteps: 20, Seed: 1, Size: 64x64, " + "Extra: " + "9" * 100_000, "characters long"),
])
def test_garbage_a1111_text_gives_one_line(tmp_path, text, word):
    path = png_with_text(tmp_path / "garbage.png", parameters=text)
    with pytest.raises(InvalidRequest) as error:
        request_from_metadata(read_png_metadata(path))
    message = str(error.value)
    assert word in message and "\n" not in message and len(message) < 300, message
    status = reuse_settings(str(path))[-1]
    assert status.startswith("**Settings not read:**") and "\n" not in status and len(status) < 330


def test_the_size_cap_is_below_100_kb():
    assert MAX_PARAMETERS_CHARS < 100_000
