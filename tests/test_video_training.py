"""Tuned video: upsamplers trained on clips (videos, GIFs, folders of frames) for the embedded shapes-video model,
through the library, the CLI and the Train tab, then used by the Video tab's tuned mode."""

import json
import random

import pytest
import torch
from PIL import Image

from selfcascade.adapters.files import read_adapter_config
from selfcascade.cascade.request import VideoRequest
from selfcascade.cascade.video import make_video
from selfcascade.errors import InvalidRequest
from selfcascade.files.video import write_video
from selfcascade.models.loader import load_model
from selfcascade.shapes.motion import random_clip_scene, render_clip
from selfcascade.shapes.train_adapter import render_example_clips
from selfcascade.training.data.clips import TrainingClips, as_clip_sources, read_clip
from selfcascade.training.features import FrozenFeatures
from selfcascade.training.loop import TrainingRequest, train
from selfcascade.ui import train_handlers
from selfcascade.ui.cli import main as cli_main

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def video_model():
    return load_model("shapes-video")


def moving_frames(count: int, size: int = 128, seed: int = 0) -> list[Image.Image]:
    scene = random_clip_scene(random.Random(seed), None, "right")
    return render_clip(scene, "right", count, size)


def test_clips_from_mp4_gif_and_frame_folders(tmp_path):
    frames = moving_frames(6)
    write_video(frames, tmp_path / "a.mp4", 8, {})
    frames[0].save(tmp_path / "b.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    (tmp_path / "c").mkdir()
    for index, frame in enumerate(frames):
        frame.save(tmp_path / "c" / f"{index:02d}.png")
    (tmp_path / "c.txt").write_text("a red circle moving right")
    for source in ("a.mp4", "b.gif", "c"):
        clip = read_clip(tmp_path / source, (128, 128), 4)
        assert len(clip) == 6 and clip[0].size == (128, 128)
    data = TrainingClips([str(tmp_path / s) for s in ("a.mp4", "c")], (128, 128), 4, frames=4, caption="shared")
    pixels, captions = data.batch(3, random.Random(0))
    assert pixels.shape == (12, 3, 128, 128) and len(captions) == 12
    assert set(captions) <= {"shared", "a red circle moving right"}
    assert all(len(set(captions[i:i + 4])) == 1 for i in range(0, 12, 4))  # one caption per clip
    # Frames are consecutive: the red object moves right from one row to the next within a clip.
    red = (pixels[:4, 0] > 0.5) & (pixels[:4, 1] < 0)
    columns = [float(torch.nonzero(r)[:, 1].float().mean()) for r in red]
    assert columns == sorted(columns) and columns[-1] > columns[0]
    # Loose frames (as the CLI or the Train tab list them) are their folder's one clip.
    assert as_clip_sources([str(tmp_path / "c" / "00.png"), str(tmp_path / "c" / "01.png"),
                            str(tmp_path / "b.gif")]) == [str(tmp_path / "c"), str(tmp_path / "b.gif")]


@pytest.mark.parametrize("kind,message", [("corrupt", "not a video that can be read"),
                                          ("short", r"has 2 frame\(s\)"), ("small", "smaller than the stage"),
                                          ("text", "not a video")])
def test_bad_clips_are_explained(tmp_path, kind, message):
    path = tmp_path / {"corrupt": "bad.mp4", "short": "short.gif", "small": "small.gif", "text": "notes.doc"}[kind]
    if kind == "corrupt":
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    elif kind == "text":
        path.write_text("hello")
    else:
        frames = moving_frames(2 if kind == "short" else 6, 128 if kind == "short" else 32)
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(InvalidRequest, match=message):
        read_clip(path, (128, 128), 4)


def test_frozen_features_reuse_whole_clips(video_model):
    """The video UNet needs whole clips: features are computed and reused per clip, and reuse changes nothing."""
    model = video_model.for_frames(3)
    clips = torch.cat([torch.rand(3, 3, 128, 128) * 2 - 1, torch.rand(3, 3, 128, 128) * 2 - 1])
    captions = ["a red circle"] * 3 + ["a blue square"] * 3
    fresh = FrozenFeatures(model, budget_mb=0, group=3)(clips, captions)
    cached = FrozenFeatures(model, group=3)
    cached(clips, captions)
    again = cached(clips.flip(0).reshape(2, 3, 3, 128, 128).flip(1).reshape(6, 3, 128, 128), captions[::-1])
    assert fresh.z0.shape == (6, 4, 32, 32) and fresh.conditioning.positive.shape[0] == 6
    assert torch.allclose(again.z0, torch.cat([fresh.z0[3:], fresh.z0[:3]]), atol=1e-6)
    assert cached.hit_rate() == 0.5


def test_a_video_adapter_trains_and_drives_tuned_video(video_model, tmp_path):
    sources = render_example_clips(tmp_path / "clips", 4, 128, 4, 0)
    events = list(train(TrainingRequest(images=sources, size=(128, 128), steps=3, batch=1, frames=4,
                                        out=str(tmp_path / "adapter"), model="shapes-video"), video_model))
    assert events[0].frames == 4 and "clips of 4 frames" in events[0].describe()
    config = read_adapter_config(tmp_path / "adapter" / "adapter.safetensors")
    assert config["base_model"] == "shapes-video" and config["training"]["frames"] == 4
    assert "python -m selfcascade video" in (tmp_path / "adapter" / "README.md").read_text()
    request = VideoRequest("a red circle moving right", 128, 128, frames=4, steps=6, mode="tuned",
                           adapter=str(tmp_path / "adapter"), seed=2)
    result, path = make_video(request, tmp_path / "tuned.mp4", video_model)
    assert len(result.frames) == 4 and result.metadata["adapter"] == "adapter" and path.stat().st_size > 0


def test_the_image_model_refuses_clips(tmp_path):
    sources = render_example_clips(tmp_path / "clips", 1, 128, 4, 0)
    with pytest.raises(InvalidRequest, match="image model: it trains on images, not on videos"):
        list(train(TrainingRequest(images=sources, size=(128, 128), steps=1, out=str(tmp_path / "a"))))


def test_cli_trains_a_video_adapter_from_a_folder_of_clips(tmp_path, capsys):
    render_example_clips(tmp_path / "clips", 2, 128, 4, 1)
    code = cli_main(["train", "--model", "shapes-video", "--images", str(tmp_path / "clips"), "--size", "128x128",
                     "--frames", "4", "--batch", "1", "--steps", "2", "--out", str(tmp_path / "adapter"), "--quiet"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    record = json.loads((tmp_path / "adapter" / "config.json").read_text())["training"]
    assert record["frames"] == 4 and record["images"] == 2


def test_train_tab_trains_on_example_clips_and_shows_strips(video_model):
    outputs = list(train_handlers.train_stream("shapes-video", None, "", True, 128, 128, 2, 2e-3, 1, "", 0, "",
                                               0, train_handlers.NEW_ADAPTER, 4))
    final = outputs[-1]
    assert final[0].startswith("**Trained**"), final[0]
    references = [o[2] for o in outputs if isinstance(o[2], Image.Image)]
    assert references and references[0].size == (4 * 128, 128)  # the tuning-free sample: a strip of 4 frames
    assert train_handlers.is_video_adapter(final[4])


def test_train_tab_explains_a_bad_video_upload(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    outputs = list(train_handlers.train_stream("shapes-video", [str(bad)], "", False, 128, 128, 2, 2e-3, 1, "", 0,
                                               "", 0, train_handlers.NEW_ADAPTER, 4))
    assert outputs[-1][0].startswith("**Not trained:**") and "broken.mp4" in outputs[-1][0]


def test_huge_frames_are_refused_before_training(tmp_path, monkeypatch):
    from selfcascade.training.data import clips as training_clips

    monkeypatch.setattr(training_clips, "MAX_CLIP_PIXELS", 100 * 100)
    frames = moving_frames(4)
    write_video(frames, tmp_path / "big.mp4", 8, {})
    frames[0].save(tmp_path / "big.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    for name in ("big.mp4", "big.gif"):
        with pytest.raises(InvalidRequest, match="megapixels per frame"):
            read_clip(tmp_path / name, (64, 64), 4)


def test_the_shipped_video_adapter_is_the_video_tabs_default(video_model, tmp_path):
    shipped = train_handlers.adapter_choices(video=True)[-1][1]  # (label, token): the token is its name, not a path
    assert shipped == "shapes-video-adapter" and train_handlers.is_video_adapter(shipped)
    assert not train_handlers.is_video_adapter(train_handlers.adapter_choices()[-1][1])  # the image model's
    request = VideoRequest("a blue square moving up", 128, 128, frames=4, steps=6, mode="tuned", adapter=shipped,
                           seed=3)
    result, _ = make_video(request, tmp_path / "shipped.mp4", video_model)
    assert result.metadata["adapter"] == "shapes-video-adapter" and len(result.frames) == 4
