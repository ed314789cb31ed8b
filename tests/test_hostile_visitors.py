"""The app as a public Space meets hostile and careless visitors.

`python app.py` runs in its own process with SPACE_ID set (as on Hugging Face), its temp folder, home and
working folder inside the test's folder, driven over HTTP with gradio_client as any visitor can. Every
hostile value must get a one-line refusal in the status the handler streams (not a traceback, not gradio's
generic "Error"), the server must keep serving after each, and nothing may be written outside the app's
two folders (the bounded outputs folder and gradio's cache).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except OSError:
        return 0


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """The app started as a Space; yields (url, its temp folder, the folders it may write)."""
    base = tmp_path_factory.mktemp("space")
    temp, home, cwd = base / "tmp", base / "home", base / "cwd"
    for folder in (temp, home, cwd):
        folder.mkdir()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SELFCASCADE_", "GRADIO_"))}
    env.update(SPACE_ID="visitor/test-space", TMPDIR=str(temp), HOME=str(home), PYTHONPATH=str(ROOT),
               GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    log = open(base / "server.log", "w")
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=cwd, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + STARTUP_SECONDS
    while http_status(url) != 200:
        assert server.poll() is None, (base / "server.log").read_text()[-3000:]
        assert time.time() < deadline, "the Space did not start serving"
        time.sleep(1)
    yield url, temp, base
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def visitor(space):
    return Client(space[0], verbose=False)


def alive(url: str) -> bool:
    return http_status(url) == 200


def call(url: str, api_name: str, **values) -> list:
    """POST to gradio's REST API as a raw visitor would (JSON that may hold NaN or a 10^30 seed, which
    gradio_client refuses to send), the endpoint's defaults for what is not given; the last outputs streamed,
    or ["**Refused:** <gradio's reason>"] when gradio refuses the values before queueing them (a slider's range)."""
    parameters = Client(url, verbose=False).view_api(print_info=False, return_format="dict")[
        "named_endpoints"][f"/{api_name}"]["parameters"]
    data = [values.get(p["parameter_name"], p.get("parameter_default")) for p in parameters]
    request = urllib.request.Request(f"{url}gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            event = json.load(response)["event_id"]
    except urllib.error.HTTPError as error:  # gradio's own check of a component's range, before the queue
        assert error.code == 400, error
        return [f"**Refused:** {json.load(error)['detail']}"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event}", timeout=300) as response:
        lines = response.read().decode().splitlines()
    events = [(kind[len("event: "):], data[len("data: "):]) for kind, data in zip(lines, lines[1:])
              if kind.startswith("event: ")]
    kind, payload = events[-1] if events else ("none", "null")
    if kind == "error":  # a component's own range check: a message; a handler's crash: gradio's generic null
        message = (json.loads(payload) or {}).get("error")
        assert message, f"a generic error (a crash in the handler): {lines[-6:]}"
        return [f"**Refused:** {message}"]
    assert kind == "complete", lines[-6:]
    return json.loads(payload)


def last_status(url: str, api_name: str, **values) -> str:
    """The status line (first output) a streaming handler yielded last."""
    return str(call(url, api_name, **values)[0])


def assert_one_line_refusal(status: str, *words: str) -> None:
    assert status.startswith(("**Not run:**", "**Cannot run:**", "**Not trained:**", "**Settings not read:**",
                              "**Refused:**")), status
    assert "\n" not in status.strip() and "Traceback" not in status, status
    for word in words:
        assert word.lower() in status.lower(), status


def test_the_space_serves_the_page_and_a_small_api(space, visitor):
    url = space[0]
    assert alive(url)
    named = visitor.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert len(named) <= 14 and not any(name.rstrip("0123456789").endswith("_") for name in named)
    assert {"/generate", "/compare", "/video", "/train", "/stop", "/reuse_settings", "/describe_plan"} <= set(named)


GENERATE_REFUSALS = [
    (dict(seed=2**64), "seed"),
    (dict(seed=-1), "seed"),
    (dict(steps=float("nan")), "steps"),
    (dict(guidance=float("inf")), "maximum"),
    (dict(strength=float("nan")), "strength"),
    (dict(width=float("nan")), "width"),
    (dict(width=100000, height=100000), "cap"),
    (dict(stages="0,128"), "positive"),
    (dict(stages="-64,128"), "positive"),
    (dict(stages="64x0,128"), "positive"),
    (dict(stages="64,,128"), "empty entry"),
    (dict(model="m" * 5000), "5000 characters"),
    (dict(prompt="p" * 100_000), "prompt"),
    (dict(consensus=float("nan")), "consensus"),
]


@pytest.mark.parametrize("values, word", GENERATE_REFUSALS,
                         ids=[str(list(v)[0]) + "-" + w for v, w in GENERATE_REFUSALS])
def test_generate_refuses_hostile_values_in_one_line(space, visitor, values, word):
    started = time.time()
    status = last_status(space[0], "generate", **{"steps": 2, "width": 64, "height": 64, **values})
    assert_one_line_refusal(status, word)
    assert time.time() - started < 30
    assert alive(space[0])


def test_server_paths_get_one_answer_whether_they_exist_or_not(space):
    url = space[0]
    answers = {path: last_status(url, "generate", model=path, steps=2, width=64, height=64)
               for path in ("/root", "/nonexistent/dir", str(ROOT / "selfcascade" / "assets" / "shapes-model"),
                            "../selfcascade/assets/shapes-model")}
    assert len(set(answers.values())) == 1, answers
    assert_one_line_refusal(answers["/root"], "server paths are not read")
    adapters = {path: last_status(url, "generate", mode="tuned", adapter=path, steps=2, width=128, height=128)
                for path in ("/etc/shadow", "/nonexistent/adapter.safetensors",
                             str(ROOT / "selfcascade" / "assets" / "shapes-adapter"))}
    assert len(set(adapters.values())) == 1, adapters
    assert_one_line_refusal(adapters["/etc/shadow"], "server paths are not read")
    vaes = {path: last_status(url, "generate", vae=path, steps=2, width=64, height=64) for path in ("/root", "/nope")}
    assert len(set(vaes.values())) == 1, vaes


def test_the_page_shows_no_server_path(space):
    with urllib.request.urlopen(f"{space[0]}config", timeout=30) as response:
        config = response.read().decode()
    assert str(ROOT) not in config and str(space[1]) not in config


def test_training_refuses_a_huge_size_in_seconds(space):
    url = space[0]
    started = time.time()
    status = last_status(url, "train", use_examples=True, width=100000, height=100000, steps=1)
    assert_one_line_refusal(status, "100000")
    assert time.time() - started < 30 and alive(url)
    assert_one_line_refusal(last_status(url, "train", use_examples=True, batch=float("nan"), steps=1), "batch")


def test_the_plan_answers_hostile_values_at_once(space, visitor):
    for values in (dict(width=float("nan")), dict(stages="64,,128"), dict(model="m" * 5000), dict(steps=10**30)):
        started = time.time()
        text = call(space[0], "describe_plan", **values)[0]
        assert text.startswith(("**Cannot run:**", "**Refused:**")) and time.time() - started < 10, text
        assert "\n" not in text, text


def test_video_refuses_hostile_values_in_one_line(space, visitor):
    for values, word in ((dict(frames=100000), "frames"), (dict(fps=float("nan")), "fps"),
                         (dict(frames=float("nan")), "frames"), (dict(seed=10**30), "seed")):
        assert_one_line_refusal(last_status(space[0], "video", **values), word)
    assert alive(space[0])


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_record(path: Path, record, size: tuple[int, int] = (16, 16)) -> Path:
    """A PNG whose header claims `size` (its pixels are not decoded to read settings) with a selfcascade
    text chunk holding `record` as JSON."""
    header = struct.pack(">IIBBBBB", size[0], size[1], 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + b"\0\0\0" * 16 for _ in range(16)))
    text = b"selfcascade\0" + json.dumps(record).encode()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"tEXt", text)
                     + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b""))
    return path


GOOD_RECORD = {"prompt": "a red circle", "width": 128, "height": 128, "seed": 3}
HOSTILE_RECORDS = {
    "a-list": ([1, 2, 3], "not an object"),
    "model-list": ({**GOOD_RECORD, "model": ["a", "b"]}, "model"),
    "width-text": ({**GOOD_RECORD, "width": "abc"}, "width"),
    "huge-seed": ({**GOOD_RECORD, "seed": 10**30}, "seed"),
    "nan-steps": ({**GOOD_RECORD, "steps": float("nan")}, "steps"),
    "stages-zero": ({**GOOD_RECORD, "stages": "0,128"}, "positive"),
}


@pytest.mark.parametrize("name", HOSTILE_RECORDS)
def test_reuse_settings_refuses_hostile_records_in_one_line(space, visitor, tmp_path, name):
    record, word = HOSTILE_RECORDS[name]
    status = visitor.predict(handle_file(str(png_with_record(tmp_path / f"{name}.png", record))),
                             api_name="/reuse_settings")[-1]
    assert_one_line_refusal(status, word)


def test_reuse_settings_reads_headers_only_and_names_no_server_path(space, visitor, tmp_path):
    huge = png_with_record(tmp_path / "huge.png", GOOD_RECORD, size=(30000, 30000))  # 900 megapixels claimed
    status = visitor.predict(handle_file(str(huge)), api_name="/reuse_settings")[-1]
    assert_one_line_refusal(status, "megapixels")
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    status = visitor.predict(handle_file(str(text)), api_name="/reuse_settings")[-1]
    assert_one_line_refusal(status, "notes.png")
    assert str(space[1]) not in status and "/tmp" not in status and "gradio" not in status
    good = visitor.predict(handle_file(str(png_with_record(tmp_path / "good.png", GOOD_RECORD))),
                           api_name="/reuse_settings")
    assert good[-1].startswith("Settings of good.png loaded") and good[3] == 128


def test_stop_cancels_a_queued_job_of_ones_own(space):
    url = space[0]
    busy, waiting = Client(url, verbose=False), Client(url, verbose=False)
    running = busy.submit(steps=60, width=256, height=256, api_name="/generate")
    time.sleep(1)
    queued = waiting.submit(steps=2, width=64, height=64, api_name="/generate")
    time.sleep(1)
    assert waiting.predict(api_name="/stop").startswith("Stopping")
    assert busy.predict(api_name="/stop").startswith("Stopping")
    assert "Stopped" in queued.result(timeout=120)[0]
    assert "Stopped" in running.result(timeout=120)[0]


def test_a_small_run_works_within_the_caps(space, visitor):
    status = last_status(space[0], "generate", steps=2, width=128, height=128)
    assert status.startswith("**Done**"), status


def test_nothing_is_written_outside_the_app_folders(space, visitor):
    url, temp, base = space
    assert alive(url)
    allowed = (temp / "selfcascade-outputs", temp / "gradio")
    stray = [path for path in base.rglob("*") if path.is_file() and path.name != "server.log"
             and not any(folder in path.parents for folder in allowed)]
    assert stray == []
