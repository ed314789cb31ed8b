"""Each visitor's adapters are their own on a Space (hosting.ON_SPACE switched on in this process, with fake gradio
requests for two sessions); no list, value or message carries a server path, here or locally."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from selfcascade.errors import InvalidRequest
from selfcascade.files import hosting
from selfcascade.files.outputs import OUTPUTS
from selfcascade.models.names import SHIPPED_ADAPTERS
from selfcascade.ui import handlers, train_handlers, visitor_files
from selfcascade.ui.space_policy import ADAPTER_REFUSAL
from selfcascade.ui.train_tab import use_adapter

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_FILE = SHIPPED_ADAPTERS["shapes-adapter"] / "adapter.safetensors"


@pytest.fixture
def space(monkeypatch, tmp_path):
    """A Space in this process: sessions own their files, kept under a fresh outputs folder."""
    monkeypatch.setattr(hosting, "ON_SPACE", True)
    monkeypatch.setattr(OUTPUTS, "root", tmp_path / "outputs")
    return tmp_path


def visitor(name: str) -> SimpleNamespace:
    return SimpleNamespace(session_hash=f"session-of-{name}")  # what visitor_files reads of a gr.Request


def tokens(choices) -> list[str]:
    return [token for _, token in choices]


def generate_status(request, adapter: str) -> str:
    form = dict(model="embedded", prompt="a red circle", negative="", width=64, height=64, stages="", mode="tuned",
                steps=2, strength=0.5, guidance=4.0, scheduler=None, upper=None, anchor=None, upper_guidance=None,
                seed=1, upload=None, adapter=adapter)
    return list(handlers.generate_stream(**form, request=request))[-1][0]


def test_a_visitor_cannot_list_resolve_or_use_another_visitors_adapter(space, embedded_model):
    alice, bob = visitor("alice"), visitor("bob")
    upload = space / "secret_userA_adapter.safetensors"
    shutil.copyfile(SHIPPED_FILE, upload)
    update, message = train_handlers.add_uploaded_adapter(str(upload), "embedded", alice)
    token = update["value"]
    assert token == "secret_userA_adapter" and message == "Adapter secret_userA_adapter is ready (mode: tuned)."
    assert token in tokens(train_handlers.adapter_choices(False, alice))
    path = visitor_files.resolve_adapter(token, alice)
    assert Path(path).is_file() and Path(path).is_relative_to(visitor_files.session_folder(alice))
    assert "session-of-alice" not in path  # the folder is named by a hash of the session key, not by the key

    for choices in (train_handlers.adapter_choices(False, bob), train_handlers.adapter_choices(None, bob),
                    train_handlers.resume_choices(bob)):
        assert not any("secret" in label or "secret" in value for label, value in choices)
    for attempt in (token, f"{token}/adapter.safetensors", path, "/etc/shadow", "/no/such/file.safetensors"):
        with pytest.raises(InvalidRequest) as refused:
            visitor_files.resolve_adapter(attempt, bob)
        assert str(refused.value) == ADAPTER_REFUSAL  # the same words whatever is at that path
    assert generate_status(bob, token) == f"**Not run:** {ADAPTER_REFUSAL}"
    assert generate_status(alice, token).startswith("**Done**")

    shutil.copyfile(SHIPPED_FILE, space / "bobs.safetensors")
    train_handlers.add_uploaded_adapter(str(space / "bobs.safetensors"), "embedded", bob)
    handlers.end_session(alice)  # Blocks.unload: alice closed her tab
    assert not visitor_files.session_folder(alice).exists() and train_handlers.adapter_choices(False, alice) == [
        (visitor_files.SHIPPED_LABELS["shapes-adapter"], "shapes-adapter")]
    assert tokens(train_handlers.adapter_choices(False, bob))[0] == "bobs"  # bob's stay


def test_trained_adapters_go_to_the_sessions_folder(space):
    folder = visitor_files.new_adapter_folder(visitor("carol"))
    assert folder.parent == visitor_files.session_folder(visitor("carol")) and folder.name.startswith("adapter-")


def test_use_adapter_checks_the_file_it_is_handed(space):
    """/use_adapter takes a file from the browser: random bytes are refused in one line, a real adapter becomes the
    session's own (once, however often it is sent) and is selected by its token."""
    dave = visitor("dave")
    noise = space / "adapter.safetensors"
    noise.write_bytes(b"\x08" + bytes(range(200)))
    assert use_adapter(str(noise), dave)[0] == use_adapter(None, dave)[0]  # gr.skip(): nothing changes
    assert visitor_files.own_adapters(dave) == []
    for _ in range(2):
        generate_choice, mode, *_ = use_adapter(str(SHIPPED_FILE), dave)
        assert mode == "tuned" and generate_choice["value"] == "adapter"
    assert [entry.name for entry in visitor_files.own_adapters(dave)] == ["adapter"]


def test_locally_one_owner_keeps_todays_behaviour(monkeypatch, tmp_path):
    """No SPACE_ID: every tab is the same user, a closed tab keeps the adapters, typed paths still work."""
    monkeypatch.setattr(OUTPUTS, "root", tmp_path / "outputs")
    one, other = visitor("one"), visitor("other")
    token = visitor_files.adopt_adapter(SHIPPED_FILE, one)
    assert token in tokens(train_handlers.adapter_choices(False, other))
    handlers.end_session(one)
    assert visitor_files.resolve_adapter(token, other).endswith("adapter.safetensors")
    assert visitor_files.resolve_adapter(str(SHIPPED_FILE), other) == str(SHIPPED_FILE)


def test_the_page_holds_no_server_path():
    """gradio puts every choice and value into the page's config: the checkout and outputs paths appeared there."""
    from app import demo

    config = json.dumps(demo.config, default=str)
    assert str(ROOT) not in config and str(OUTPUTS.root) not in config
    assert all("/" not in value for _, value in train_handlers.resume_choices())
