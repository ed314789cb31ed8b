"""Hosting on a Hugging Face Space: tighter caps where SPACE_ID is set, and spaces.GPU (ZeroGPU) around every
handler that uses the device, generators included. Each case runs in a fresh process, as a Space starts."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE_SPACES = """
decorated = {}
def GPU(task=None, *, duration=None, size=None):  # records what the app asks ZeroGPU for
    def wrap(function):
        decorated[function.__name__] = duration
        return function
    return wrap if task is None else wrap(task)
"""


def run_python(script: str, extra_path: Path | None = None, **env) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SELFCASCADE_") and k != "SPACE_ID"}
    path = os.pathsep.join(str(p) for p in (extra_path, ROOT) if p)
    done = subprocess.run([sys.executable, "-c", script], env={**base, **env, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_caps_are_tighter_on_a_space_and_env_overrides_them():
    script = ("from selfcascade.files import images as media, outputs, hosting; "
              "print(hosting.MAX_UPLOAD_MB, media.MAX_IMAGE_PIXELS // 2**20, outputs.OUTPUTS.max_age, "
              "outputs.OUTPUTS.max_bytes // 2**20)")

    def caps(**env):
        return run_python(script, **env).split()

    assert caps() == ["20", "64", "86400", "2048"]
    assert caps(SPACE_ID="someone/selfcascade") == ["10", "16", "3600", "512"]
    assert caps(SPACE_ID="someone/selfcascade", SELFCASCADE_MAX_UPLOAD_MB="50",
                SELFCASCADE_OUTPUT_MAX_MB="100") == ["50", "16", "3600", "100"]


def test_every_device_handler_asks_zerogpu_for_a_gpu(tmp_path):
    (tmp_path / "spaces.py").write_text(FAKE_SPACES)
    script = ("import spaces, selfcascade.ui.train_handlers; "  # a duration of no arguments: the default
              "print(sorted((name, duration()) for name, duration in spaces.decorated.items()))")
    assert run_python(script, tmp_path) == ("[('compare', 120), ('generate_stream', 120), ('train_stream', 300), "
                                            "('video_stream', 120)]")
    assert run_python(script, tmp_path, SELFCASCADE_GPU_SECONDS="60", SELFCASCADE_TRAIN_GPU_SECONDS="900") == (
        "[('compare', 60), ('generate_stream', 60), ('train_stream', 900), ('video_stream', 60)]")
