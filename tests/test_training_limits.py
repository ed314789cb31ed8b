"""Training inputs a hostile or careless user may send: sizes and numbers out of range or of the wrong kind,
uploads over the caps (refused before anything is copied, leaving nothing on disk), still and animated GIF/WebP,
a folder with no images."""

import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfcascade.errors import InvalidRequest
from selfcascade.files.outputs import OUTPUTS
from selfcascade.shapes.train_adapter import render_example_clips, render_examples
from selfcascade.training import request as training
from selfcascade.training.data import archive
from selfcascade.training.data import uploads as training_data
from selfcascade.training.data.clips import as_clip_sources, is_clip_source
from selfcascade.training.data.images import frame_count
from selfcascade.training.data.uploads import gather_training_clips, gather_training_images
from selfcascade.training.loop import TrainingDone, TrainingRequest, train
from selfcascade.ui import train_handlers
from selfcascade.ui.cli import main as cli_main

from .bad_files import png_bytes, write_zip
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


def noise_png(path, side=512):
    """A PNG that does not compress: about side * side * 3 bytes on disk."""
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
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
    script = ("from selfcascade.training import request as training; "
              "from selfcascade.training.data import uploads as training_data; "
              "print(training.MAX_TRAIN_SIDE, training_data.MAX_TRAIN_UPLOAD_MB)")
    assert run_python(script, SPACE_ID="someone/selfcascade", SELFCASCADE_MAX_TRAIN_UPLOAD_MB="100") == "512 100"


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


# 2. Uploads counted before they are copied; a refusal leaves nothing on disk.

def test_too_many_images_are_refused_before_any_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "MAX_TRAINING_IMAGES", 2)
    uploads = [still(tmp_path / "in" / f"{i}.png") for i in range(3)]
    staging = tmp_path / "staging"
    with pytest.raises(InvalidRequest, match="^3 training images: at most 2 are accepted"):
        gather_training_images(uploads, None, staging, SIZE)
    assert not staging.exists()
    zipped = write_zip(tmp_path / "three.zip", {f"{i}.png": png_bytes() for i in range(3)})  # counted unpacked
    with pytest.raises(InvalidRequest, match="^3 training images: at most 2 are accepted"):
        gather_training_images([zipped], None, staging, SIZE)
    assert not staging.exists()


def test_example_renders_count_with_the_uploads(tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "MAX_TRAINING_IMAGES", 3)
    staging = tmp_path / "staging"
    render_examples(staging / "examples", 2, 128, 0)
    uploads = [still(tmp_path / "in" / f"{i}.png") for i in range(2)]
    with pytest.raises(InvalidRequest, match="^4 training images: at most 3"):
        gather_training_images(uploads, None, staging, SIZE)
    assert not staging.exists()  # the example renders went with it


def test_the_uploads_bytes_are_capped_before_any_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "MAX_TRAIN_UPLOAD_MB", 1)
    uploads = [noise_png(tmp_path / f"noise{i}.png") for i in range(2)]
    assert sum(os.path.getsize(p) for p in uploads) > 2**20
    staging = tmp_path / "staging"
    with pytest.raises(InvalidRequest, match=r"^the uploads come to 1\.\d MB \(zips unpacked\): at most 1 MB are "
                                             "accepted for a training"):
        gather_training_images(uploads, None, staging, SIZE)
    assert not staging.exists()
    zipped = write_zip(tmp_path / "noise.zip", {f"{i}.png": Path(p).read_bytes() for i, p in enumerate(uploads)})
    with pytest.raises(InvalidRequest, match="the uploads come to"):  # a zip counts as it unpacks
        gather_training_images([zipped], None, staging, SIZE)
    assert not staging.exists()


def test_a_video_models_uploads_are_counted_too(tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "MAX_TRAINING_CLIPS", 1)
    videos = []
    for name in ("a.mp4", "b.mov"):  # counted by name and size: never opened before the refusal
        (tmp_path / name).write_bytes(b"\x00" * 100)
        videos.append(str(tmp_path / name))
    with pytest.raises(InvalidRequest, match="^2 training clips: at most 1 are accepted"):
        gather_training_clips(videos, None, tmp_path / "staging", SIZE, 4)
    monkeypatch.setattr(training_data, "MAX_CLIP_FRAMES", 2)
    frames = [still(tmp_path / "frames" / f"{i}.png") for i in range(3)]
    with pytest.raises(InvalidRequest, match=r"^3 frames \(images, GIF, WebP\): at most 2 are accepted"):
        gather_training_clips(frames, None, tmp_path / "staging", SIZE, 2)
    assert not (tmp_path / "staging").exists()


def test_a_zip_bomb_is_refused_before_writing_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_ZIP_MB", 1)
    bomb = write_zip(tmp_path / "bomb.zip", {"big.png": bytes(3 * 2**20)})  # 3 MB of zeros, a few KB zipped
    staging = tmp_path / "staging"
    render_examples(staging / "examples", 1, 128, 0)
    with pytest.raises(InvalidRequest, match=r"^bomb.zip unpacks to more than 1 MB \(3 MB\): refused"):
        gather_training_images([bomb], None, staging, SIZE)
    assert not staging.exists()


def test_a_refused_unpacking_removes_what_it_wrote(tmp_path):
    path = tmp_path / "half.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("a/one.png", png_bytes("red"))
        zipped.writestr("a/two.png", png_bytes("blue"))
    data = bytearray(path.read_bytes())
    second = data.index(b"a/two.png") + len("a/two.png")  # the second entry's data, after its local header
    data[second + 10:second + 30] = bytes(20)
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidRequest, match="half.zip is damaged: a/two.png could not be unpacked"):
        archive.unpack_training_zip(path, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()  # one.png was written first: it went with the folder
    kept = tmp_path / "existing"
    still(kept / "mine.png")
    with pytest.raises(InvalidRequest, match="damaged"):
        archive.unpack_training_zip(path, kept)
    assert sorted(p.name for p in kept.rglob("*")) == ["mine.png"]  # what was there before stays


def test_the_handler_leaves_no_staging_folder_when_refused(outputs, tmp_path, monkeypatch):
    monkeypatch.setattr(training_data, "MAX_TRAINING_IMAGES", 2)
    uploads = [still(tmp_path / "in" / f"{i}.png") for i in range(3)]
    status = stream_status(uploads)
    assert status == "**Not trained:** 3 training images: at most 2 are accepted (a few dozen good ones are " \
                     "enough for the upsamplers)"
    assert list((outputs / "datasets").iterdir()) == []


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
