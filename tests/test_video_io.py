"""Video files: the mp4 is H.264 yuv420p with faststart and its parameters; GIF/WebP on request."""

import json

import numpy as np
import pytest
from PIL import Image

from selfcascade.errors import InvalidRequest
from selfcascade.files.video import describe, write_video


def moving_square(frames=5, size=(64, 48)):
    images = []
    for index in range(frames):
        array = np.full((size[1], size[0], 3), 255, np.uint8)
        array[10:26, 4 + 6 * index:20 + 6 * index] = (220, 30, 30)
        images.append(Image.fromarray(array))
    return images


def test_mp4_reads_back_h264_yuv420p_with_its_frames_and_parameters(tmp_path):
    path = write_video(moving_square(), tmp_path / "clip.mp4", 8, {"prompt": "a red square moving right"})
    facts = describe(path)
    assert facts["codec"] == "h264" and facts["pix_fmt"] == "yuv420p"
    assert (facts["width"], facts["height"], facts["frames"]) == (64, 48, 5)
    assert json.loads(facts["comment"])["prompt"] == "a red square moving right"
    data = path.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # faststart: the index before the media data


def test_odd_sides_are_cropped_even(tmp_path):
    facts = describe(write_video(moving_square(size=(65, 47)), tmp_path / "odd.mp4", 4, {}))
    assert (facts["width"], facts["height"]) == (64, 46)


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animations_on_request(tmp_path, suffix):
    path = write_video(moving_square(), tmp_path / f"clip{suffix}", 10, {"prompt": "x"})
    with Image.open(path) as image:
        assert image.n_frames == 5 and image.size == (64, 48)


@pytest.mark.parametrize("name", ["clip.avi", "clip.png", "clip"])
def test_other_outputs_are_refused(tmp_path, name):
    with pytest.raises(InvalidRequest, match="a video is written as"):
        write_video(moving_square(), tmp_path / name, 8, {})
