"""Motion steering: a video's first stage travels the prompted way (selfcascade.diffusion.motion_steering)."""

import pytest
import torch

from selfcascade.cascade.pipeline import run
from selfcascade.cascade.presets import request_defaults
from selfcascade.cascade.request import VideoRequest
from selfcascade.diffusion.motion_steering import (
    frame_offsets,
    prompted_direction,
    track_anchor,
    translate,
    travelling_copy,
)
from selfcascade.errors import InvalidRequest
from selfcascade.shapes.detector import check, object_mask
from selfcascade.shapes.motion import centroid, parse_motion_prompt, track_follows
from selfcascade.ui import video_handlers
from selfcascade.ui.cli import main as cli_main


def _blob(x, y, size=16):
    image = torch.zeros(1, 1, size, size)
    image[..., y - 1:y + 2, x - 1:x + 2] = 1.0
    return image


def _centre(image):
    weights = image[0, 0]
    ys, xs = torch.meshgrid(torch.arange(weights.shape[0]), torch.arange(weights.shape[1]), indexing="ij")
    return float((weights * xs).sum() / weights.sum()), float((weights * ys).sum() / weights.sum())


def test_translate_moves_content_by_its_offset_in_pixels():
    moved = translate(_blob(5, 8), torch.tensor([[3.0, -2.0]]))
    assert _centre(moved) == pytest.approx((8.0, 6.0), abs=1e-4)
    half = translate(_blob(5, 8), torch.tensor([[0.5, 0.0]]))
    assert _centre(half) == pytest.approx((5.5, 8.0), abs=1e-4)


def test_the_travelling_copy_moves_the_clearest_frame_along_the_direction():
    frames = 5
    # the frames' estimates disagree on the object: only frame 3 holds it clearly (early estimates often
    # leave it out of the middle frame, which then steered every frame to an empty video)
    x0 = torch.cat([_blob(10 if f == 3 else 8, 8 + (f % 2) * 4) * (1.0 if f == 3 else 0.3) for f in range(frames)])
    offsets = frame_offsets(frames, "right", 0.5, 16, 16)  # 8 latent px over the clip
    assert offsets[:, 0].tolist() == pytest.approx([-4, -2, 0, 2, 4]) and offsets[:, 1].abs().max() == 0
    copy = travelling_copy(x0, offsets, frames)
    centres = [_centre(copy[f:f + 1]) for f in range(frames)]
    # frame 3 keeps its place (x 10, y 12); the others are it, moved by their offsets
    assert [c[0] for c in centres] == pytest.approx([4, 6, 8, 10, 12], abs=1e-3)
    assert all(c[1] == pytest.approx(12, abs=1e-3) for c in centres)
    assert copy.amax(dim=(1, 2, 3)).tolist() == pytest.approx([1.0] * frames)
    two_videos = travelling_copy(torch.cat([x0, x0.flip(0)]), offsets, frames)  # frames fastest, per video
    assert torch.allclose(two_videos[:frames], copy)


def test_an_object_at_the_border_travels_into_the_frame_not_out_of_it():
    """Asked to move left, an object the noise put at the right border starts there and moves in."""
    frames = 5
    x0 = torch.cat([_blob(14, 8)] * frames)
    offsets = frame_offsets(frames, "left", 0.5, 16, 16)
    assert track_anchor(x0[:1], offsets[2:3], offsets).flatten().tolist() == pytest.approx([4, 0], abs=1e-3)
    xs = [_centre(frame[None])[0] for frame in travelling_copy(x0, offsets, frames)]
    assert xs[0] == pytest.approx(14, abs=1e-3) and xs == sorted(xs, reverse=True) and xs[-1] > 5.9
    # an object well inside keeps its own place on the track
    middle = torch.cat([_blob(8, 8)] * frames)
    assert track_anchor(middle[:1], offsets[2:3], offsets).flatten().tolist() == pytest.approx([0, 0], abs=1e-3)


def test_the_direction_is_read_from_the_prompt_or_set():
    assert prompted_direction("a red circle moving LEFT") == "left"
    assert prompted_direction("a red circle") is None
    assert VideoRequest("a blue square moving up", 64, 64).motion_direction() == "up"
    assert VideoRequest("a blue square moving up", 64, 64, motion="down").motion_direction() == "down"
    assert VideoRequest("a blue square moving up", 64, 64, motion="none").motion_direction() is None
    assert VideoRequest("a blue square moving up", 64, 64, steer=0).motion_direction() is None
    assert VideoRequest("a corgi", 64, 64).motion_direction() is None


@pytest.mark.parametrize("settings, words", [({"motion": "sideways"}, "unknown motion"),
                                             ({"travel": -0.1}, "travel"), ({"steer": 1.5}, "steer"),
                                             ({"travel": True}, "travel")])
def test_bad_motion_settings_are_one_clear_message(settings, words):
    with pytest.raises(InvalidRequest, match=words):
        VideoRequest("a red circle", 64, 64, **settings).check()


def test_the_cli_and_the_tab_refuse_a_bad_direction(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        cli_main(["video", "--prompt", "a red circle", "--size", "64x64", "--motion", "sideways",
                  "--out", str(tmp_path / "x.mp4")])
    assert exited.value.code == 2 and "sideways" in capsys.readouterr().err
    with pytest.raises(InvalidRequest, match="travel is empty"):
        video_handlers.build_video_request("shapes-video", "a red circle", "", 64, 64, 8, 8, "", "direct", 10, 0.3,
                                           2, None, None, None, None, 0, travel=None)


def test_the_embedded_video_model_follows_the_steered_direction():
    """From one seed the unsteered model draws one track whatever the prompt says; steered, the object goes
    the way asked, both ways along each axis."""
    for direction in ("right", "left", "down"):
        prompt = f"a large red square on a gray background moving {direction}"
        result = run(VideoRequest(prompt, 64, 64, mode="direct", frames=8, steps=16, seed=3, guidance=2,
                                  free_init=0), previews=False)
        spec = parse_motion_prompt(prompt)[0]
        track = [centroid(object_mask(frame, spec)) for frame in result.frames]
        assert not track_follows(track, direction), (direction, track)
        assert result.metadata["motion_direction"] == direction


def test_steering_keeps_an_object_the_middle_frame_had_not_drawn_yet():
    """A 4:3 first stage (64x48) where the noisiest estimates held the red triangle in the first frames but not
    in the middle one: copying the middle frame steered all 16 frames empty; the clearest frame keeps it."""
    prompt = "a red triangle moving left"
    result = run(VideoRequest(prompt, 64, 48, frames=16, seed=106, **request_defaults("shapes-video")),
                 previews=False)
    spec = parse_motion_prompt(prompt)[0]
    verdicts = [check(frame, spec) for frame in result.frames]
    assert not [v.failures for v in verdicts if "missing" in v.failures]
    track = [centroid(object_mask(frame, spec)) for frame in result.frames]
    assert not track_follows(track, "left"), track
