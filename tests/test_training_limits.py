"""Training inputs a hostile or careless user may send: sizes and numbers out of range or of the wrong kind,
uploads over the caps (refused before anything is copied, leaving nothing on disk), still and animated GIF/WebP,
a folder with no images."""

import math

import numpy as np
import pytest
from PIL import Image

from selfcascade import training
from selfcascade.cli import main as cli_main
from selfcascade.dataset import frame_count
from selfcascade.outputs import OUTPUTS
from selfcascade.shapes.train_adapter import render_example_clips, render_examples
from selfcascade.stages import InvalidRequest
from selfcascade.training import TrainingDone, TrainingRequest, train
from selfcascade.training_clips import as_clip_sources, is_clip_source
from selfcascade.training_data import gather_training_images
from selfcascade.ui import train_handlers

from .test_space import run_python

SIZE = (128, 128)


def still(path, side=160, colour="red"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (side, side), colour).save(path)
    return str(path)


def animated(path, frames=3, side=160):
    images = [Image.new("RGB", (side, side), colour) for colour in ("red", "green", "blue", "white")[:frames]]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100)
    return str(path)


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    """The app's bounded output folder, here: the handler's staging folders land in it."""
    monkeypatch.setattr(OUTPUTS, "root", tmp_path / "outputs")
    return tmp_path / "outputs"


def stream_status(uploads=None, use_examples=False, width=128, height=128, model="embedded") -> str:
    outputs = list(train_handlers.train_stream(model, uploads, "", use_examples, width, height, 1, 2e-3, 1, "",
                                               0, "", 0, train_handlers.NEW_ADAPTER))
    return outputs[-1][0]


# 1. The stage size and the numbers of a training request.

def test_a_huge_stage_size_is_refused_before_any_example_is_rendered(outputs):
    status = stream_status(use_examples=True, width=100000, height=100000)
    assert status == f"**Not trained:** stage width must be a whole number from 16 to {training.MAX_TRAIN_SIDE} px, " \
                     "not 100000"
    assert not (outputs / "datasets").exists()  # no example rendered, no file copied


def test_the_stage_size_cap_follows_its_variable(monkeypatch):
    monkeypatch.setattr(training, "MAX_TRAIN_SIDE", 512)
    TrainingRequest(images=[], size=(512, 256)).check()
    with pytest.raises(InvalidRequest, match="^stage height must be a whole number from 16 to 512 px, not 1024$"):
        TrainingRequest(images=[], size=(512, 1024)).check()


def test_caps_on_a_space_and_their_variables():
    script = "from selfcascade import training; print(training.MAX_TRAIN_SIDE)"
    assert run_python(script, SPACE_ID="someone/selfcascade") == "512"


@pytest.mark.parametrize("field, value, message", [
    ("size", (128, math.nan), "stage height must be a whole number from 16"),
    ("size", (128.5, 128), "stage width must be a whole number"),
    ("size", (0, 128), "stage width must be a whole number from 16"),
    ("size", (128,), "the stage size must be WIDTHxHEIGHT"),
    ("size", "128x128", "the stage size must be WIDTHxHEIGHT"),
    ("steps", math.nan, "steps must be a whole number from 1 to 100000, not nan"),
    ("steps", math.inf, "steps must be a whole number"),
    ("steps", 2.5, "steps must be a whole number"),
    ("steps", True, "steps must be a whole number"),  # a bool is not a count
    ("steps", "10", "steps must be a whole number"),
    ("batch", math.nan, "batch must be a whole number from 1 to 64"),
    ("frames", math.inf, "frames must be a whole number from 1 to 64"),
    ("width", math.nan, "upsampler width must be a whole number from 1 to 64 filters"),
    ("learning_rate", math.nan, r"learning rate must be a number in \(0, 0.1\], not nan"),
    ("learning_rate", math.inf, "learning rate must be a number"),
    ("learning_rate", "0.01", "learning rate must be a number"),
    ("learning_rate", None, "learning rate must be a number"),
    ("strength", math.nan, r"strength must be a number in \(0, 1\]"),
    ("strength", -math.inf, "strength must be a number"),
    ("checkpoint_every", math.nan, r"checkpoint every must be a whole number from 0 to 100000 \(0: only at"),
    ("checkpoint_every", -1, "checkpoint every must be a whole number"),
    ("seed", math.nan, "seed must be a whole number"),
    ("grad_accum", 1.5, "gradient accumulation must be a whole number"),
])
def test_bad_numbers_are_one_line_not_a_crash(field, value, message):
    request = TrainingRequest(images=[], size=SIZE)
    setattr(request, field, value)
    with pytest.raises(InvalidRequest, match=message) as refused:
        request.check()
    assert "\n" not in str(refused.value)


def test_whole_numbers_of_numpy_and_good_values_pass():
    TrainingRequest(images=[], size=(np.int64(128), 128), steps=np.int32(3), learning_rate=np.float32(1e-3),
                    strength=1, checkpoint_every=0, width=4, grad_accum=2).check()


def test_example_renders_are_bounded_by_the_same_cap(tmp_path):
    with pytest.raises(InvalidRequest, match=f"from 1 to {training.MAX_TRAIN_SIDE} px per side, not 100000"):
        render_examples(tmp_path / "examples", 64, 100000, 0)
    with pytest.raises(InvalidRequest, match="px per side, not 100000"):
        render_example_clips(tmp_path / "clips", 16, 100000, 8, 0)
    with pytest.raises(InvalidRequest, match="from 1 to 64 frames, not 1000"):
        render_example_clips(tmp_path / "clips", 16, 128, 1000, 0)
    assert not (tmp_path / "examples").exists() and not (tmp_path / "clips").exists()


# 3. Still GIF and WebP are images; animated ones are a video model's; a folder without images says so.

def test_still_gif_and_webp_are_training_images(tmp_path):
    uploads = [still(tmp_path / "in" / "one.gif"), still(tmp_path / "in" / "two.webp"),
               animated(tmp_path / "moving.gif")]
    assert [frame_count(p) for p in uploads] == [1, 1, 3]
    assert [is_clip_source(p) for p in uploads] == [False, False, True]
    data = gather_training_images(uploads, None, tmp_path / "staging", SIZE)
    assert sorted(p.rsplit("/", 1)[1] for p in data.images) == ["one.gif", "two.webp"]
    assert "moving.gif is animated (3 frames): an image model trains on still images" in " ".join(data.notes)
    # For a video model, still frames are frames of one clip and the animated GIF a clip of its own.
    assert as_clip_sources(uploads) == [str(tmp_path / "in"), uploads[2]]


def test_an_animated_gif_alone_is_explained(tmp_path):
    with pytest.raises(InvalidRequest, match=r"^no usable training images: moving.webp is animated \(2 frames\): an "
                                             r"image model trains on still images \(use a still image, or a video "
                                             r"model\)$"):
        gather_training_images([animated(tmp_path / "moving.webp", frames=2)], None, tmp_path / "staging", SIZE)


def test_the_image_model_trains_on_a_still_gif_and_explains_an_animated_one(embedded_model, tmp_path):
    events = list(train(TrainingRequest(images=[still(tmp_path / "one.gif")], size=SIZE, steps=1, batch=1,
                                        out=str(tmp_path / "adapter")), embedded_model))
    assert isinstance(events[-1], TrainingDone) and events[-1].steps == 1
    with pytest.raises(InvalidRequest, match=r"^moving.gif is animated \(3 frames\): an image model trains on still"):
        list(train(TrainingRequest(images=[animated(tmp_path / "moving.gif")], size=SIZE, steps=1), embedded_model))


def test_cli_a_folder_without_images_says_so(tmp_path, capsys):
    folder = tmp_path / "etc"
    (folder / "ssl").mkdir(parents=True)
    (folder / "ssl" / "openssl.cnf").write_text("[ default ]")
    (folder / "hosts").write_text("127.0.0.1 localhost")
    code = cli_main(["train", "--images", str(folder), "--size", "128x128", "--steps", "1",
                     "--out", str(tmp_path / "adapter")])
    assert code == 2
    assert capsys.readouterr().err == f"selfcascade: error: {folder}: no images (png, jpg, webp, bmp, gif, tif) in it\n"
    assert not (tmp_path / "adapter").exists()
