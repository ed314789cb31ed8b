"""The Generate tab's handlers, called as the app calls them (no browser)."""

import pytest
from PIL import Image

from selfcascade.files.images import read_png_metadata
from selfcascade.ui import handlers

from .bad_files import make_bad_image

EMBEDDED = "embedded"


def form(**overrides):
    values = dict(model=EMBEDDED, prompt="a large blue square", negative="", width=128, height=128, stages="",
                  mode="tuning-free", steps=6, strength=0.5, guidance=4.0, scheduler="ddpm", upper="frequency-split",
                  anchor=1.0, upper_guidance=None, seed=1, upload=None)
    values.update(overrides)
    return values


def run(**overrides):
    return list(handlers.generate_stream(**form(**overrides)))


def test_every_preset_fills_the_whole_form():
    for name in handlers.preset_names():
        values = handlers.preset_values(name)
        assert len(values) == len(handlers.FORM) and all(v is not None for v in values)


def test_plan_and_estimate_before_running(embedded_model):
    text = handlers.describe_plan(EMBEDDED, 256, 256, "", "tuning-free", 40, 0.5, 4.0, "ddpm",
                                  "frequency-split")
    assert "64x64 -> 128x128 -> 256x256" in text and "estimated" in text
    assert "Cannot run" in handlers.describe_plan(EMBEDDED, 0, 256, "", "tuning-free", 40, 0.5, 4.0, "ddpm", None)


def test_stream_shows_each_stage_then_the_result(embedded_model):
    outputs = run()
    galleries = [o[2] for o in outputs if isinstance(o[2], list) and o[2]]
    assert [len(g) for g in galleries][:2] == [1, 2]
    status, _, gallery, image, path, images = outputs[-1]
    assert status.startswith("**Done**") and image.size == (128, 128) and len(gallery) == 2
    assert Image.open(path).size == (128, 128) and images == [(path, "seed 1")]  # one image: one PNG


def test_empty_prompt_is_allowed_and_draws_unconditionally(embedded_model):
    assert run(prompt="", width=64, height=64)[-1][0].startswith("**Done**")


def test_upscale_my_image(embedded_model, tmp_path):
    path = tmp_path / "mine.png"
    Image.new("RGB", (100, 60), (230, 25, 25)).save(path)
    status = run(upload=str(path))[-1][0]
    assert status.startswith("**Done**") and "resized to 64x64" in status


BAD = [
    (dict(width=0), "positive"),
    (dict(width=-64), "positive"),
    (dict(width=100000), "cap"),
    (dict(width=64.5), "whole number"),
    (dict(stages="128,64"), "stages must grow"),
    (dict(stages="64,512"), "stages must grow"),
    (dict(strength=0), "strength"),
    (dict(strength=1.5), "strength"),
    (dict(steps=0), "steps"),
    (dict(model="nobody/no-such-model"), "not available offline"),
    (dict(dtype="half"), "unknown dtype"),
    (dict(vae_tiling="sometimes"), "unknown VAE tiling"),
    (dict(vae="/no/such/vae"), "no such folder"),
]


@pytest.mark.parametrize("overrides,message", BAD)
def test_bad_settings_are_explained_and_nothing_breaks(embedded_model, overrides, message):
    status = run(**overrides)[-1][0]
    assert status.startswith("**Not run:**") and message in status


@pytest.mark.parametrize("kind,message", [("text", "not an image"), ("corrupt", "damaged"),
                                          ("tiny", "at least"), ("huge", "megapixels")])
def test_bad_uploads_are_explained(embedded_model, tmp_path, kind, message):
    status = run(upload=make_bad_image(tmp_path, kind))[-1][0]
    assert status.startswith("**Not run:**") and message in status
    assert run()[-1][0].startswith("**Done**")  # and the app still works


def test_sizes_that_do_not_divide_are_rounded_with_a_message(embedded_model):
    status = run(width=120, height=100)[-1][0]
    assert "rounded to 128x96" in status


def test_compare_gives_both_images_with_times(embedded_model):
    status, pair = list(handlers.compare(**{k: v for k, v in form().items() if k != "upload"},
                                         baseline="direct"))[-1]
    assert "direct" in status and "Self-Cascade" in status
    assert pair[0].size == pair[1].size == (128, 128)


def test_compare_runs_the_plain_direct_baseline_and_says_what_ran(embedded_model):
    """The form's strategy is the cascade's: the direct baseline runs plain, and the caption says which ran."""
    compare_form = {k: v for k, v in form(upper="hidiffusion-pyramid", width=256, height=256, steps=3).items()
                    if k != "upload"}
    status, pair = list(handlers.compare(**compare_form, baseline="direct"))[-1]
    assert "**direct** (left; strategy plain)" in status, status
    assert "(right; strategy hidiffusion-pyramid)" in status and pair[0].size == (256, 256)
    # With mode direct the field is the direct run's: a strategy picked for it runs and is named
    picked = {**compare_form, "mode": "direct", "upper": "scalecrafter", "width": 128, "height": 128}
    status, _ = list(handlers.compare(**picked, baseline="direct"))[-1]
    assert "**direct** (left; strategy scalecrafter)" in status, status
    assert "(right; strategy frequency-pyramid)" in status, status  # the preset's, below its 4x rule


def test_picking_direct_shows_plain_and_leaving_it_restores_the_strategy():
    skip = type(handlers.gr.skip())
    assert handlers.upper_for_mode("direct", "hidiffusion-pyramid", None) == ("plain", "hidiffusion-pyramid")
    assert handlers.upper_for_mode("tuning-free", "plain", "hidiffusion-pyramid") == ("hidiffusion-pyramid", None)
    kept, replaced = handlers.upper_for_mode("tuned", "demofusion", "hidiffusion-pyramid")  # chosen meanwhile
    assert isinstance(kept, skip) and replaced is None
    kept, replaced = handlers.upper_for_mode("tuned", "plain", None)  # plain chosen for a cascade stays
    assert isinstance(kept, skip) and replaced is None
    kept, replaced = handlers.upper_for_mode("direct", "plain", None)
    assert isinstance(kept, skip) and replaced is None


def test_a_direct_run_reads_back_as_plain_and_a_chosen_strategy_as_itself(embedded_model):
    for upper, shown in ((None, "plain"), ("plain", "plain"), ("demofusion", "demofusion")):
        status, _, _, _, path, _ = run(mode="direct", upper=upper, steps=2)[-1]
        assert status.startswith("**Done**") and f"upper stages: {shown}" in status, status
        assert read_png_metadata(path)["upper_stage"] == [shown]
        values = dict(zip(handlers.FORM, handlers.reuse_settings(path)))
        assert values["mode"] == "direct" and values["upper"] == shown


def test_tuned_with_an_empty_adapter_field_uses_the_shipped_adapter(embedded_model):
    status, _, _, _, path, _ = run(mode="tuned", adapter="", steps=3)[-1]
    assert status.startswith("**Done**"), status
    assert read_png_metadata(path)["adapter"] == "shapes-adapter"
    status = run(mode="tuned", adapter=None, model="some-org/some-model")[-1][0]
    assert status.startswith("**Not run:**") and "needs an adapter" in status, status


def test_precision_and_tiling_settings_reach_the_run(embedded_model):
    status, _, _, image, path, _ = run(width=64, height=64, dtype="bfloat16", vae_tiling="on")[-1]
    assert status.startswith("**Done**") and image.size == (64, 64)
    metadata = read_png_metadata(path)
    assert metadata["dtype_used"] == "bfloat16" and metadata["vae_tiling"] == "on"
