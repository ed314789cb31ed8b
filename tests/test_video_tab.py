"""The Video tab's handler without a browser: stage strips stream, the mp4 plays, bad input is one line, Stop works."""


import pytest

from selfcascade.files.video import describe
from selfcascade.models.loader import EMBEDDED_MODEL
from selfcascade.ui import sessions
from selfcascade.ui.video_handlers import video_stream

from .tiny_components import save_tiny_text_to_video


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    return str(save_tiny_text_to_video(tmp_path_factory.mktemp("tab-video")))


def values(video_model, **overrides):
    form = dict(model=video_model, prompt="a red circle moving right", negative="", width=128, height=128, frames=3,
                fps=8, stages="", mode="tuning-free", steps=3, strength=0.5, guidance=4.0, scheduler="ddim",
                upper="frequency-split", anchor=1.0, upper_guidance=None, seed=0, adapter=None, download_format="mp4")
    form.update(overrides)
    return list(form.values())


def test_stream_shows_stage_strips_then_a_playable_mp4(tiny_video):
    outputs = list(video_stream(*values(tiny_video, download_format="gif")))
    status, _live, gallery, player, download = outputs[-1]
    assert status.startswith("**Done**") and "3 frames" in status
    assert len(gallery) == 2 and gallery[-1][0].size == (3 * 128, 128)  # a strip of 3 frames per stage
    facts = describe(player)
    assert (facts["codec"], facts["pix_fmt"], facts["frames"]) == ("h264", "yuv420p", 3)
    assert download.endswith(".gif")


@pytest.mark.parametrize("overrides, message", [({"frames": 0}, "frames"), ({"fps": 0}, "fps"),
                                                ({"width": 127}, "even"),
                                                ({"model": str(EMBEDDED_MODEL)}, "image model")])
def test_bad_input_is_one_message(tiny_video, overrides, message):
    status = list(video_stream(*values(tiny_video, **overrides)))[-1][0]
    assert status.startswith("**Not run:**") and message in status


def test_stop_reaches_the_run(tiny_video):
    class Request:
        session_hash = "video-stop-test"

    stream = video_stream(*values(tiny_video, steps=50), request=Request())
    for output in stream:
        if str(output[0]).startswith("Stage"):
            assert sessions.stop(Request())
            break
    assert list(stream)[-1][0].startswith("**Stopped.**")
    assert sessions.active_runs() == 0 or not sessions.stop(Request())
