"""Hostile adapter files are refused in one line, fast and small, before anything is built from their config;
the shipped adapters and every design still load."""

import json
import time

import pytest
import torch
from safetensors.torch import load_file, save_file

from selfcascade.adapters import checks as adapter_checks
from selfcascade.adapters.checks import expected_tensors
from selfcascade.adapters.files import read_adapter_config, save_adapter
from selfcascade.adapters.upsampler import FeatureUpsamplers
from selfcascade.errors import InvalidRequest
from selfcascade.models.names import SHIPPED_ADAPTERS
from selfcascade.ui import train_handlers

SHIPPED = SHIPPED_ADAPTERS["shapes-adapter"]
CONFIG = {k: v for k, v in json.loads((SHIPPED / "config.json").read_text()).items() if not k.startswith("_")}
TINY = {"levels.0.gain": torch.zeros(4)}  # a 1 KB file's worth of weights


def write(path, tensors, config=None, metadata=None) -> str:
    """A .safetensors file with `tensors` and, in its metadata, `config` as the adapter's record."""
    meta = dict(metadata or {})
    if config is not None:
        meta["selfcascade_config"] = config if isinstance(config, str) else json.dumps(config)
    save_file(tensors, str(path), metadata=meta)
    return str(path)


def refused(path) -> str:
    """The one-line refusal of reading `path`, checked to come fast (no build of what the config asks for)."""
    started = time.perf_counter()
    with pytest.raises(InvalidRequest) as caught:
        read_adapter_config(path)
    assert time.perf_counter() - started < 2
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    return message


HOSTILE_CONFIGS = {
    "width 3000": ({"width": 3000}, "width must be a whole number from 1 to 64"),
    "20,000 levels": ({"skip_channels": [32] * 20_000, "skip_levels": [0] * 20_000,
                       "skip_indices": list(range(20_000))}, "skip_channels must have 1 to 64 entries"),
    "huge channels": ({"skip_channels": [10**7] * 6}, "skip_channels must be a list of whole numbers"),
    "channels as text": ({"skip_channels": ["32"] * 6}, "skip_channels must be a list of whole numbers"),
    "width as float": ({"width": 8.0}, "width must be a whole number"),
    "width as bool": ({"width": True}, "width must be a whole number"),
    "time_dim huge": ({"time_dim": 10**9}, "time_dim must be a whole number"),
    "index out of range": ({"skip_indices": [1, 3, 6]}, "skip_indices must be a list of whole numbers from 0 to 5"),
    "repeated index": ({"skip_indices": [1, 1]}, "repeat"),
    "levels mismatch": ({"skip_levels": [0, 0, 1]}, "6 skip_channels but 3 skip_levels"),
    "no levels": ({"skip_channels": [], "skip_levels": [], "skip_indices": []}, "must have 1 to 64 entries"),
    "unknown design": ({"design": "rainbow"}, "unknown design"),
    "two-line base model": ({"base_model": "x\nTraceback (most recent call last)"}, "base_model must be one line"),
    "training not a record": ({"training": [1, 2]}, "training must be a JSON object"),
    "steps as text": ({"training": {"steps": "many"}}, "training.steps must be a whole number"),
}


@pytest.mark.parametrize("case", list(HOSTILE_CONFIGS))
def test_hostile_configs_are_refused_before_building(tmp_path, case, monkeypatch):
    change, message = HOSTILE_CONFIGS[case]
    built = []
    monkeypatch.setattr(FeatureUpsamplers, "__init__", lambda *a, **k: built.append(1) or None)
    path = write(tmp_path / "adapter.safetensors", TINY, {**CONFIG, **change})
    assert message in refused(path)
    assert not built  # nothing built, not even on the meta device


def test_weights_must_be_what_the_config_builds(tmp_path):
    """A valid config (the shipped one's) with other weights: names, shapes and dtypes come from the header."""
    real = load_file(str(SHIPPED / "adapter.safetensors"))
    message = refused(write(tmp_path / "a.safetensors", TINY, CONFIG))
    assert "builds 45 weights; the file lacks 44 of them and holds 0 others" in message
    wide = {**real, "levels.0.lift.weight": torch.zeros(8, 32, 5, 5)}
    assert ("levels.0.lift.weight is [8, 32, 5, 5] where its config builds [8, 32, 3, 3]"
            in refused(write(tmp_path / "b.safetensors", wide, CONFIG)))
    ints = {**real, "levels.0.gain": torch.zeros(32, dtype=torch.int8)}
    assert "stored as I8" in refused(write(tmp_path / "c.safetensors", ints, CONFIG))
    renamed = {("levels.0.x" if key == "levels.0.gain" else key): value for key, value in real.items()}
    assert "lacks 1 of them and holds 1 others" in refused(write(tmp_path / "d.safetensors", renamed, CONFIG))


def test_damaged_and_oversized_files(tmp_path, monkeypatch):
    noise = tmp_path / "noise.safetensors"
    noise.write_bytes(bytes(range(256)) * 8)  # random bytes: the first 8 say a header of 500 PB
    assert "damaged" in refused(noise)
    huge_header = tmp_path / "header.safetensors"
    huge_header.write_bytes((50 * 2**20).to_bytes(8, "little") + b"{" + b" " * 100)
    assert "damaged" in refused(huge_header)
    nested = write(tmp_path / "nested.safetensors", TINY, "[" * 100_000 + "]" * 100_000)
    assert "selfcascade_config is not JSON" in refused(nested)
    not_object = write(tmp_path / "list.safetensors", TINY, "[1, 2]")
    assert "not a JSON object" in refused(not_object)
    monkeypatch.setattr(adapter_checks, "MAX_ADAPTER_BYTES", 64 * 2**10)
    message = refused(SHIPPED / "adapter.safetensors")  # 125 KB over a 64 KB cap
    assert "0.1 MB; adapters here may be up to 0.0625 MB" in message and str(SHIPPED) not in message


def test_a_folder_is_checked_the_same_way(tmp_path):
    folder = tmp_path / "folder-adapter"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**CONFIG, "width": 3000}))
    write(folder / "diffusion_pytorch_model.safetensors", TINY)
    message = refused(folder)
    assert message.startswith("folder-adapter: not a usable adapter (width must be") and str(tmp_path) not in message
    (folder / "config.json").write_text("{not json")
    assert "config.json is not JSON" in refused(folder)
    missing = refused(tmp_path / "no-such")
    assert str(tmp_path) not in missing


def test_the_upload_handler_refuses_a_hostile_file_in_one_line(tmp_path):
    """The reproduced case: a 1.3 KB upload asking for width 3000 took 1.9 GB and 1.8 s in add_uploaded_adapter."""
    path = write(tmp_path / "wide.safetensors", TINY, {**CONFIG, "width": 3000})
    started = time.perf_counter()
    update, message = train_handlers.add_uploaded_adapter(path, "embedded")
    assert time.perf_counter() - started < 2
    assert message.startswith("**Adapter refused:** wide.safetensors: not a usable adapter (width must be")
    assert "\n" not in message


@pytest.mark.parametrize("design,width", [("shared", 4), ("mixed", 8), ("mixed", 64)])
def test_the_checks_follow_the_real_module(tmp_path, design, width):
    """expected_tensors (a meta-device build) is what a real build saves, for every design; it round-trips."""
    upsamplers = FeatureUpsamplers(skip_channels=(32, 32, 64, 64), skip_levels=(0, 0, 1, 1), skip_indices=(1, 3),
                                   width=width, time_conditioning="output", design=design)
    real = {key: tuple(value.shape) for key, value in upsamplers.state_dict().items()}
    assert expected_tensors(dict(upsamplers.config)) == real
    folder = save_adapter(upsamplers, tmp_path / "a")
    for path in (folder, folder / "adapter.safetensors"):
        assert read_adapter_config(path)["width"] == width


def test_the_shipped_adapters_pass():
    for name in SHIPPED_ADAPTERS:
        assert read_adapter_config(name)["time_conditioning"] == "output"
        assert read_adapter_config(SHIPPED_ADAPTERS[name] / "adapter.safetensors")["skip_indices"] == [1, 3, 5]


def test_messages_name_adapters_never_by_server_path(embedded_model, tmp_path):
    """A resume choice pruned meanwhile, or a folder that is no adapter, was reported by its absolute path."""
    from selfcascade.adapters.files import load_adapter

    (tmp_path / "not-an-adapter").mkdir()
    for path, message in ((tmp_path / "adapter-1", "adapter-1: no such adapter"),
                          (tmp_path / "adapter-1" / "adapter.safetensors", "adapter-1/adapter.safetensors: no such"),
                          (tmp_path / "not-an-adapter", "not-an-adapter: not an adapter folder")):
        with pytest.raises(InvalidRequest, match=message) as caught:
            load_adapter(path, embedded_model)
        assert str(tmp_path) not in str(caught.value)
    assert load_adapter("shapes-adapter", embedded_model).config.base_model == "embedded"  # the shipped one by name
