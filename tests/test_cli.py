import os
import subprocess
import sys

import pytest
from PIL import Image

from selfcascade.files.images import read_png_metadata

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "selfcascade", *args], capture_output=True, text=True, env=ENV,
                          timeout=300)


def test_generate_writes_a_4x_png_with_its_parameters(tmp_path):
    out, previews = tmp_path / "circle.png", tmp_path / "previews"
    done = cli("generate", "--prompt", "a large red circle", "--size", "256x256", "--out", str(out),
               "--steps", "8", "--seed", "5", "--previews", str(previews))
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (256, 256)
    metadata = read_png_metadata(out)
    assert metadata["prompt"] == "a large red circle" and metadata["seed"] == 5 and metadata["steps"] == 8
    assert metadata["mode"] == "tuning-free" and metadata["stage_sizes"] == ["64x64", "128x128", "256x256"]
    assert sorted(p.name for p in previews.iterdir()) == [
        "stage0_64x64.png", "stage1_128x128.png", "stage2_256x256.png"]


BAD = [
    (["--size", "0x256"], "positive"),
    (["--size=-64x64"], "positive"),
    (["--size", "banana"], "WIDTHxHEIGHT"),
    (["--size", "99999x64"], "cap"),
    (["--size", "256x256", "--max-side", "128"], "cap"),
    (["--size", "256x256", "--strength", "0"], "strength"),
    (["--size", "256x256", "--strength", "1.5"], "strength"),
    (["--size", "256x256", "--steps", "0"], "steps"),
    (["--size", "256x256", "--mode", "magic"], "invalid choice"),
    (["--size", "256x256", "--model", "/no/such/model"], "no such folder"),
    (["--size", "256x256", "--stages", "128,64"], "stages must grow"),
    (["--size", "256x256", "--scheduler", "fancy"], "unknown scheduler"),
    (["--size", "256x256", "--dtype", "half"], "invalid choice"),
    (["--size", "256x256", "--vae-tiling", "sometimes"], "invalid choice"),
    (["--size", "64x64", "--vae", "/no/such/vae"], "VAE /no/such/vae: no such folder"),
]


@pytest.mark.parametrize("arguments,message", BAD)
def test_bad_arguments_exit_2_with_one_line(tmp_path, arguments, message):
    done = cli("generate", "--prompt", "a red circle", "--out", str(tmp_path / "x.png"), *arguments)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = cli("generate", "--prompt", "a red circle", "--size", "64x64", "--steps", "2",
               "--out", str(blocker / "x.png"))
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_precision_and_memory_flags(tmp_path):
    out = tmp_path / "half.png"
    done = cli("generate", "--prompt", "a red circle", "--size", "128x128", "--steps", "2", "--out", str(out),
               "--dtype", "float16", "--vae-tiling", "on", "--offload", "off")
    assert done.returncode == 0, done.stderr
    assert "memory: peak about" in done.stderr and "GiB free" in done.stderr
    metadata = read_png_metadata(out)
    assert metadata["dtype_used"] == "float16" and metadata["vae_tiling"] == "on"


def test_direct_is_the_papers_plain_baseline_unless_a_strategy_is_asked_for(tmp_path):
    """The embedded preset's strategy, anchoring and consensus are its cascade's: --mode direct runs one plain
    full-size call, and runs (and records) a strategy only when --upper names one."""
    out = tmp_path / "d.png"
    done = cli("generate", "--mode", "direct", "--prompt", "a red circle", "--size", "128x128", "--steps", "4",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    metadata = read_png_metadata(out)
    assert metadata["upper_stage"] == ["plain"] and metadata["stage_sizes"] == ["128x128"]
    assert metadata["upper"] is None and metadata["anchor"] is None and metadata["consensus"] is None
    assert metadata["pivot_anchor"] == 0.0 and metadata["pivot_consensus"] == 0
    chosen = tmp_path / "chosen.png"
    done = cli("generate", "--mode", "direct", "--upper", "scalecrafter", "--prompt", "a red circle", "--size",
               "128x128", "--steps", "2", "--out", str(chosen))
    assert done.returncode == 0, done.stderr
    assert read_png_metadata(chosen)["upper_stage"] == ["scalecrafter"]
    assert read_png_metadata(chosen)["upper"] == "scalecrafter"


def test_direct_requests_leave_the_presets_cascade_settings_out():
    from selfcascade.cascade.plan import resolve_run
    from selfcascade.cascade.presets import CASCADE_KEYS, request_defaults
    from selfcascade.cascade.request import GenerationRequest, VideoRequest
    from selfcascade.models.loader import load_model
    from selfcascade.ui.cli import _request, build_parser

    assert not set(CASCADE_KEYS) & set(request_defaults(None, "direct"))
    assert request_defaults(None, "tuning-free")["upper"] == "hidiffusion-pyramid"  # the cascade keeps them
    parser = build_parser()
    for command, request_class in (("generate", GenerationRequest), ("video", VideoRequest)):
        common = [command, "--prompt", "a red circle", "--size", "128x128", "--out", "x"]
        direct = _request(parser.parse_args([*common, "--mode", "direct"]), request_class)
        assert direct.upper is None
        model = load_model(direct.model or request_class.default_model)
        assert resolve_run(direct, model if command == "generate" else model.for_frames(4)).strategy == "plain"
        assert direct.anchor is None and direct.upper_guidance is None and direct.consensus is None
        assert direct.steps == request_defaults(None)["steps"]  # the sampling settings stay the preset's
        asked = _request(parser.parse_args([*common, "--mode", "direct", "--upper", "rau"]), request_class)
        assert asked.upper == "hidiffusion"  # an earlier name, normalised
        cascade = _request(parser.parse_args(common), request_class)
        assert cascade.upper == "hidiffusion-pyramid" and cascade.anchor is not None


def test_tuned_without_an_adapter_uses_the_shipped_one(tmp_path):
    out = tmp_path / "tuned.png"
    done = cli("generate", "--mode", "tuned", "--prompt", "a red circle", "--size", "128x128", "--steps", "4",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert read_png_metadata(out)["adapter"] == "shapes-adapter"  # by its public name
