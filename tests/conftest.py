"""Tests run offline on the CPU: nothing may reach a model hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

# Two CPU cores: one test process uses both; under pytest-xdist (-n 2, as the README's test command runs) each
# of the two workers uses one, so their threads do not spin in each other's waits.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture
def embedded_model():
    """The embedded model as the app holds it: the one in memory (the loader keeps one model at a time, so a
    test that loaded another one replaced it; this loads it again, in a second or two)."""
    from selfcascade.models.loader import load_model

    return load_model(None)


@pytest.fixture
def one_thread():
    """One torch thread for a test of small tensors: a second gains little there, and on a busy shared machine
    two threads spin in each other's waits (measured: live training samples 20x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
