"""Every way a base model can be unavailable gives one clear message, and the app keeps serving afterwards.

Broken folders are real (a tiny pipeline saved, then damaged); hub failures are real huggingface_hub errors
from real HTTP answers: a fake hub on localhost (HF_ENDPOINT) answers as the hub does for a gated, deleted,
disabled or non-diffusers repository, and a closed port stands for a machine without network.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from selfcascade.models.loader import ModelUnavailable, load_model
from selfcascade.ui.handlers import generate_stream

from .tiny_components import save_tiny_stable_diffusion

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("models"))


def set_class(folder: Path, name: str | None) -> None:
    index = json.loads((folder / "model_index.json").read_text())
    if name is None:
        del index["_class_name"]
    else:
        index["_class_name"] = name
    (folder / "model_index.json").write_text(json.dumps(index))


BREAKAGES = {
    "no unet folder": (lambda f: shutil.rmtree(f / "unet"),
                       r"incomplete model folder: model_index.json names unet/ \(UNet2DConditionModel\)"),
    "no unet weights": (lambda f: (f / "unet" / "diffusion_pytorch_model.safetensors").unlink(),
                        "could not be loaded: .*diffusion_pytorch_model.safetensors"),
    "damaged weights": (lambda f: (f / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage"),
                        "could not be loaded"),
    "malformed model_index.json": (lambda f: (f / "model_index.json").write_text("{not json"),
                                   "model_index.json cannot be read"),
    "no pipeline class": (lambda f: set_class(f, None), "does not name a pipeline class"),
    "another family": (lambda f: set_class(f, "KandinskyPipeline"), "is a KandinskyPipeline: not supported"),
    "unknown class": (lambda f: set_class(f, "NoSuchPipeline"), "is a NoSuchPipeline: not supported"),
    "look-alike family": (lambda f: set_class(f, "StableDiffusionInstructPix2PixPipeline"), "not supported"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_broken_folder_is_one_clear_message(tiny_sd, tmp_path, breakage):
    damage, message = BREAKAGES[breakage]
    folder = tmp_path / "model"
    shutil.copytree(tiny_sd, folder)
    damage(folder)
    with pytest.raises(ModelUnavailable, match=message) as caught:
        load_model(str(folder))
    assert "Traceback" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_failed_load_leaves_the_app_serving(tiny_sd, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_sd, folder)
    shutil.rmtree(folder / "unet")
    args = dict(prompt="a red circle", negative="", width=64, height=64, stages="", mode="tuning-free", steps=2,
                strength=0.5, guidance=4.0, scheduler=None, upper=None, anchor=None, upper_guidance=None, seed=1)
    failed = list(generate_stream(str(folder), *args.values()))
    assert failed[-1][0].startswith("**Not run:**") and "unet/" in failed[-1][0]
    done = list(generate_stream("embedded", *args.values()))
    assert done[-1][0].startswith("**Done**")


class FakeHub(BaseHTTPRequestHandler):
    """Answers like huggingface.co does for repositories in these states (status, X-Error-Code, message)."""

    ANSWERS = {
        "gated": (401, "GatedRepo", "Access to model x/gated is restricted. You must have access to it."),
        "deleted": (404, "RepoNotFound", "Repository not found"),
        "not-diffusers": (404, "EntryNotFound", "Entry not found"),
        "disabled": (403, None, "Access to this resource is disabled."),
    }

    def answer(self):
        parts = self.path.strip("/").split("/")
        status, code, message = self.ANSWERS.get(parts[1] if len(parts) > 1 else "", (404, "RepoNotFound", "-"))
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = answer

    def log_message(self, *args):
        pass


def messages_from(endpoint: str, repo_ids: list[str], tmp_path: Path, loader: bool = True) -> dict:
    """Load each id in a fresh process pointed at `endpoint` with an empty cache; {id: message}."""
    call = ("from selfcascade.models.loader import load_pipeline as load; load(repo_id, None)" if loader else
            "from selfcascade.models.loader import SUPPORTED_PIPELINES as S; "
            "from selfcascade.models.availability import check_hub_model; check_hub_model(repo_id, S)")
    script = (
        "import json, sys, time\n"
        "import huggingface_hub.utils._http as http\n"
        "http.time.sleep = lambda seconds: None  # the hub client's retry back-off, not the behaviour under test\n"
        "out = {}\n"
        "for repo_id in sys.argv[1:]:\n"
        "    try:\n"
        f"        {call}\n"
        "        out[repo_id] = 'LOADED'\n"
        "    except Exception as error:\n"
        "        out[repo_id] = type(error).__name__ + ': ' + str(error)\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf-home"),
           "HF_TOKEN": "", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, *repo_ids], env=env, capture_output=True, text=True,
                          timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_hub_failures_are_one_clear_message_each(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        messages = messages_from(f"http://127.0.0.1:{server.server_port}",
                                 ["x/gated", "x/deleted", "x/not-diffusers", "x/disabled"], tmp_path)
    finally:
        server.shutdown()
    assert messages["x/gated"].startswith("ModelUnavailable: x/gated: a gated repository: accept its licence")
    assert "HF_TOKEN" in messages["x/gated"]
    assert messages["x/deleted"].startswith("ModelUnavailable: x/deleted: no such repository on the hub")
    assert "not a diffusers pipeline" in messages["x/not-diffusers"]
    assert "disabled" in messages["x/disabled"]
    assert all("\n" not in message and "http" not in message for message in messages.values())


def test_no_network_and_not_cached_is_one_clear_message(tmp_path):
    closed = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)  # bind a port, then close it: nothing listens there
    port = closed.server_port
    closed.server_close()
    message = messages_from(f"http://127.0.0.1:{port}", ["someone/sd-model"], tmp_path, loader=False)
    assert message["someone/sd-model"] == (
        "ModelUnavailable: someone/sd-model: the hub cannot be reached (no network) and the model is not in the "
        "local cache; the embedded model always works offline (set HF_HUB_OFFLINE=1 to skip the network attempts)")
