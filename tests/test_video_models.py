"""Video Self-Cascade on tiny random-weight AnimateDiff and ModelScope (UNet3D) pipelines, saved and loaded
through the real loader: every mode, 2-3 stages, frames kept, the UNet always sees (B, C, F, H, W)."""

import numpy as np
import pytest
import torch

from selfcascade.adapters.files import save_adapter
from selfcascade.adapters.upsampler import new_upsamplers
from selfcascade.cascade.pipeline import StageDone, generate, run
from selfcascade.cascade.request import GenerationRequest, VideoRequest
from selfcascade.diffusion.upper_stage import STRATEGIES, from_sublattices, to_sublattices
from selfcascade.errors import InvalidRequest
from selfcascade.models.loader import load_model
from selfcascade.models.video import AnimateDiffModel, TextToVideoModel, VideoModel

from .tiny_components import save_tiny_animatediff, save_tiny_stable_diffusion, save_tiny_text_to_video

FAMILIES = {"animatediff": (save_tiny_animatediff, AnimateDiffModel),
            "text-to-video": (save_tiny_text_to_video, TextToVideoModel)}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("video-families")
    return {name: build(root / name) for name, (build, _) in FAMILIES.items()}


@pytest.fixture(scope="module")
def adapters(folders, tmp_path_factory):
    """A non-zero adapter per family, so the tuned residuals really reach the UNet."""
    paths = {}
    for name, folder in folders.items():
        model = load_model(str(folder))
        upsamplers = new_upsamplers(model.unet, model.name)
        with torch.no_grad():
            for level in upsamplers.levels:
                level.gain.fill_(0.5)
        paths[name] = save_adapter(upsamplers, tmp_path_factory.mktemp(f"adapter-{name}"), (128, 128), model)
    return paths


def unet_inputs(model):
    """Record the shape of every sample the UNet receives."""
    shapes = []
    model.unet.register_forward_pre_hook(lambda _m, args, kwargs: shapes.append(tuple(
        (args[0] if args else kwargs["sample"]).shape)), with_kwargs=True)
    return shapes


def video(**overrides):
    settings = dict(prompt="a red circle moving right", width=128, height=128, frames=3, steps=4, strength=0.6,
                    guidance=4.0, scheduler="ddim", seed=1)
    settings.update(overrides)
    return VideoRequest(**settings)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["tuning-free", "tuned", "direct", "hires-fix"])
def test_every_mode_keeps_frames_and_feeds_the_unet_videos(family, mode, folders, adapters):
    model = load_model(str(folders[family]))
    assert isinstance(model, FAMILIES[family][1]) and model.is_video
    shapes = unet_inputs(model)
    request = video(mode=mode, adapter=str(adapters[family]) if mode == "tuned" else None)
    events = list(generate(request, model))
    dones = [e for e in events if isinstance(e, StageDone)]
    result = events[-1]
    expected_sizes = [(128, 128)] if mode == "direct" else [(64, 64), (128, 128)]
    assert [d.size for d in dones] == expected_sizes
    for done in dones:
        assert done.pivot.shape[0] == 3 and len(done.frames) == 3  # the frame count is kept at every stage
        assert done.preview.size == (done.size[0] * 3, done.size[1])  # a strip of the frames
    assert len(result.frames) == 3 and all(frame.size == (128, 128) for frame in result.frames)
    assert result.metadata["frames"] == 3 and result.metadata["mode"] == mode
    assert result.metadata["upper_stage"][-1] == ("plain" if mode == "direct" else "frequency-pyramid")
    assert shapes and all(len(s) == 5 and s[2] == 3 for s in shapes)  # (B, C, F, H, W), F = 3 everywhere
    if mode != "direct":
        assert any(s[-1] == 8 and s[0] > 2 for s in shapes)  # the dilated views: native-size videos in a batch
    assert all(np.isfinite(np.asarray(frame, dtype=np.float32)).all() for frame in result.frames)


def test_three_stages_and_every_strategy(folders):
    model = load_model(str(folders["text-to-video"]))
    result = run(video(width=256, height=256, frames=2, steps=2), model, previews=False)
    assert result.metadata["stage_sizes"] == ["64x64", "128x128", "256x256"]
    assert len(result.frames) == 2 and result.frames[0].size == (256, 256)
    for name in STRATEGIES:
        result = run(video(frames=2, steps=2, upper=name), model, previews=False)
        ran = {"hidiffusion": "plain", "hidiffusion-pyramid": "frequency-pyramid"}.get(name, name)  # RAU-Net: 4x+
        assert result.metadata["upper_stage"] == ["-", ran] and len(result.frames) == 2


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["tuning-free", "tuned"])
def test_resolution_aware_strategy_on_video_models(family, mode, folders, adapters):
    """RAU-Net hooks on both video UNets (AnimateDiff passes the down-sampler its input by keyword), with the
    tuned residuals resized to the smaller skips."""
    model = load_model(str(folders[family]))
    request = video(frames=2, steps=2, upper="rau-pyramid", strength=0.9, mode=mode, width=256, height=256,
                    stages="64,256", adapter=str(adapters[family]) if mode == "tuned" else None)
    result = run(request, model, previews=False)  # a 4x target: RAU-Net calls on (rau_min_target_scale)
    assert result.metadata["upper_stage"] == ["-", "hidiffusion-pyramid"] and len(result.frames) == 2
    assert all(np.isfinite(np.asarray(frame, dtype=np.float32)).all() for frame in result.frames)


def test_same_seed_same_video(folders):
    model = load_model(str(folders["animatediff"]))
    first = run(video(frames=2, steps=2), model, previews=False).frames
    again = run(video(frames=2, steps=2), model, previews=False).frames
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))


def test_sublattices_of_folded_frames_stay_whole_videos():
    """Frame f of every view is cut from frame f: the temporal layers see real videos, not shuffled frames."""
    model = VideoModel.__new__(VideoModel)
    model.frames = 4
    latents = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 2, 8, 8).clone()
    views = model.unfold(to_sublattices(latents, (2, 2), 4))  # (4 views, C, F, 4, 4)
    assert views.shape == (4, 2, 4, 4, 4)
    for frame in range(4):
        assert torch.all(views[:, :, frame] == frame)
    assert torch.equal(from_sublattices(model.fold(views), (2, 2), (8, 8)), latents)


def test_image_model_refuses_video_and_video_model_refuses_images(folders, tmp_path):
    image_model = load_model(str(save_tiny_stable_diffusion(tmp_path)))
    with pytest.raises(InvalidRequest, match="image model"):
        run(video(), image_model)
    video_model = load_model(str(folders["animatediff"]))
    with pytest.raises(InvalidRequest, match="video model"):
        run(GenerationRequest("a red circle", 128, 128, steps=2), video_model)


@pytest.mark.parametrize("overrides, message", [
    ({"frames": 0}, "frames must be"), ({"frames": 100000}, "frames must be"), ({"frames": 2.5}, "frames must be"),
    ({"fps": 0}, "fps must be"), ({"fps": -3}, "fps must be"), ({"width": 129, "height": 128}, "even"),
])
def test_bad_video_requests_are_refused_before_any_model_work(overrides, message):
    with pytest.raises(InvalidRequest, match=message):
        video(**overrides).check()
