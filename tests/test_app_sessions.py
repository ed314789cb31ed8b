"""Several users at once on the launched app (gradio_client, one Client per browser session): each gets its
own result, Stop reaches only its own run, a closed session stops its run and leaves nothing behind, and an
upload over the size cap is refused by the server."""

import time

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from selfcascade.files.images import read_png_metadata
from selfcascade.ui import sessions

from .test_app_server import ARGS


@pytest.fixture(scope="module")
def app_url():
    from app import LAUNCH_OPTIONS, demo

    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **LAUNCH_OPTIONS)
    yield demo.local_url
    demo.close()


def submit(client, **overrides):
    return client.submit(*{**ARGS, **overrides}.values(), None, api_name="/generate")


def wait_for_steps(job, timeout=60):
    deadline = time.time() + timeout
    while not any("step" in str(update[0]) for update in job.outputs()) and time.time() < deadline:
        time.sleep(0.1)
    assert time.time() < deadline, "the run never started streaming steps"


def test_two_users_at_once_each_get_their_own_result(app_url):
    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    jobs = {  # submitted together; the queue runs them one after the other on the one device
        "a large red circle": (submit(first, prompt="a large red circle", seed=11, width=128, height=128), 11),
        "a small blue square": (submit(second, prompt="a small blue square", seed=22, width=128, height=96), 22),
    }
    sizes = {}
    for prompt, (job, seed) in jobs.items():
        status, _, gallery, image, png, _ = job.result(timeout=180)
        assert status.startswith("**Done**")
        metadata = read_png_metadata(png)
        assert metadata["prompt"] == prompt and metadata["seed"] == seed and metadata["model"] == "embedded"
        sizes[prompt] = Image.open(image).size
    assert sizes == {"a large red circle": (128, 128), "a small blue square": (128, 96)}
    assert sessions.active_runs() == 0  # nothing is kept per session once the runs are over


def test_stop_reaches_only_its_own_run(app_url):
    runner, bystander = Client(app_url, verbose=False), Client(app_url, verbose=False)
    job = submit(runner, steps=30, width=256, height=256)
    wait_for_steps(job)
    assert bystander.predict(api_name="/stop").startswith("Nothing of yours is running")
    assert job.result(timeout=180)[0].startswith("**Done**")


def test_a_closed_session_stops_its_run_and_frees_its_state(app_url):
    leaver, next_user = Client(app_url, verbose=False), Client(app_url, verbose=False)
    job = submit(leaver, steps=200, width=512, height=512)  # minutes of work if nobody stops it
    wait_for_steps(job)
    assert sessions.active_runs() == 1
    leaver.close()  # the heartbeat ends as when a browser tab closes: gradio runs Blocks.unload
    started = time.time()
    assert submit(next_user, steps=4, width=64, height=64).result(timeout=120)[0].startswith("**Done**")
    assert time.time() - started < 60  # the abandoned run stopped instead of holding the device
    assert sessions.active_runs() == 0


def test_an_upload_over_the_size_cap_is_refused(app_url, tmp_path):
    from selfcascade.files.hosting import MAX_UPLOAD_MB

    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (MAX_UPLOAD_MB * 2**20 + 1024))
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="(?i)too large|size|413"):
        client.predict(*ARGS.values(), handle_file(str(big)), api_name="/generate")
