"""python -m selfcascade video: an mp4 (or GIF/WebP) of the right frames and size; one-line errors, exit 2."""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from selfcascade.files.video import describe

from .tiny_components import save_tiny_animatediff

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "selfcascade", *args], capture_output=True, text=True, env=ENV,
                          timeout=300)


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    return str(save_tiny_animatediff(tmp_path_factory.mktemp("cli-video")))


def test_video_writes_an_h264_mp4_with_its_parameters(tiny_video, tmp_path):
    out, previews = tmp_path / "clip.mp4", tmp_path / "previews"
    done = cli("video", "--model", tiny_video, "--prompt", "a red circle moving right", "--frames", "3",
               "--fps", "6", "--size", "128x128", "--steps", "3", "--seed", "2", "--scheduler", "ddim",
               "--out", str(out), "--previews", str(previews))
    assert done.returncode == 0, done.stderr
    facts = describe(out)
    assert (facts["codec"], facts["pix_fmt"], facts["width"], facts["height"], facts["frames"]) == (
        "h264", "yuv420p", 128, 128, 3)
    metadata = json.loads(facts["comment"])
    assert metadata["frames"] == 3 and metadata["fps"] == 6 and metadata["stage_sizes"] == ["64x64", "128x128"]
    assert sorted(p.name for p in previews.iterdir()) == ["stage0_64x64.png", "stage1_128x128.png"]
    assert "3 frames" in done.stdout


def test_video_as_gif(tiny_video, tmp_path):
    out = tmp_path / "clip.gif"
    done = cli("video", "--model", tiny_video, "--prompt", "a blue square", "--frames", "2", "--size", "64x64",
               "--steps", "2", "--free-init", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with Image.open(out) as gif:
        assert gif.n_frames == 2 and gif.size == (64, 64)
        assert json.loads(gif.info["comment"])["free_init"] == 1


BAD = [
    (["--frames", "0"], "frames must be"),
    (["--frames", "100000"], "frames must be"),
    (["--fps", "0"], "fps must be"),
    (["--size", "66x63"], "even"),
    (["--out", "clip.avi"], "a video is written as"),
    (["--out", "clip.png"], "a video is written as"),
    (["--frames", "many"], "invalid int value"),
    (["--free-init", "9"], "free_init"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_bad_arguments_fail_with_one_line_and_exit_2(extra, message, tmp_path):
    args = {"--prompt": "a red circle", "--size": "64x64", "--out": str(tmp_path / "clip.mp4")}
    for flag, value in zip(extra[::2], extra[1::2]):
        args[flag] = str(tmp_path / value) if flag == "--out" else value
    done = cli("video", *[item for pair in args.items() for item in pair])
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_image_model_for_video_and_video_model_for_an_image(tiny_video, tmp_path):
    done = cli("video", "--model", "embedded", "--prompt", "a red circle", "--size", "64x64", "--frames", "2",
               "--out", str(tmp_path / "x.mp4"))
    assert done.returncode == 2 and "is an image model" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = cli("generate", "--model", tiny_video, "--prompt", "a red circle", "--size", "64x64",
               "--out", str(tmp_path / "x.png"))
    assert done.returncode == 2 and "is a video model" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_tuned_video_without_an_adapter_uses_the_shipped_one_for_the_embedded_model(tiny_video, tmp_path):
    out = tmp_path / "tuned.mp4"
    done = cli("video", "--mode", "tuned", "--prompt", "a red circle moving right", "--size", "128x128",
               "--frames", "2", "--steps", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(describe(out)["comment"])["adapter"] == "shapes-video-adapter"
    done = cli("video", "--model", tiny_video, "--mode", "tuned", "--prompt", "a red circle", "--size", "64x64",
               "--frames", "2", "--out", str(tmp_path / "x.mp4"))
    assert done.returncode == 2 and "needs an adapter" in done.stderr, done.stderr
