"""The project installs as a package whose data ships inside it: a wheel of the checkout, installed into a fresh
virtual environment (torch and the rest come from the system's site-packages: --system-site-packages, --no-deps),
runs the `selfcascade` command and finds the embedded models and presets from site-packages, in a folder that is
not the checkout and with the checkout on no path."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "selfcascade" / "assets"
SOURCES = ("pyproject.toml", "README.md", "selfcascade")  # what the build reads


def clean_env(**extra) -> dict:
    """The environment of a user's shell: no PYTHONPATH (the checkout on no path), offline, no Space."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "SPACE_ID", "VIRTUAL_ENV") and not k.startswith("SELFCASCADE_")}
    return {**base, "HF_HUB_OFFLINE": "1", "PIP_NO_INDEX": "1", **extra}


def run(command: list, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the venv's python, a working folder outside the checkout)."""
    pytest.importorskip("setuptools", reason="the build backend (requirements-dev.txt)")
    work = tmp_path_factory.mktemp("install")
    # A copy of what the build reads, so that setuptools' build/ and *.egg-info land there, not in the checkout
    # (which other runs may be using at the same time).
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", dist], cwd=source)
    (wheel,) = dist.glob("selfcascade-*.whl")
    venv = work / "venv"
    # --without-pip: the system's pip (visible through --system-site-packages) installs into the venv, so no
    # ensurepip is needed
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=work)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], cwd=work)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return wheel, python, elsewhere


def test_the_wheel_carries_every_shipped_model_adapter_and_preset(installed):
    wheel, _, _ = installed
    shipped = {p.relative_to(ROOT).as_posix() for p in ASSETS.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "selfcascade/assets/shapes-model/unet/diffusion_pytorch_model.safetensors" in names
    assert not any(name.startswith(("tests/", "benchmarks/", "app.py")) for name in names)


def test_the_installed_command_generates_from_another_folder(installed):
    _, python, elsewhere = installed
    command = python.parent / "selfcascade"
    done = run([command, "generate", "--prompt", "a red circle", "--size", "128x128", "--steps", "4", "--out",
                "x.png"], cwd=elsewhere)
    with Image.open(elsewhere / "x.png") as image:
        assert image.format == "PNG" and image.size == (128, 128)
    # as `python -m selfcascade`: transformers' and diffusers' notes stay off the command's stderr
    assert "Traceback" not in done.stderr and "torchvision" not in done.stderr


def test_the_package_and_its_data_come_from_site_packages(installed):
    _, python, elsewhere = installed
    script = ("import json, sysconfig, selfcascade\n"
              "from selfcascade.cascade.presets import load_presets\n"
              "from selfcascade.models.names import ASSETS, EMBEDDED_MODEL, SHIPPED_ADAPTERS\n"
              "print(json.dumps({'file': selfcascade.__file__, 'purelib': sysconfig.get_paths()['purelib'],\n"
              "    'assets': str(ASSETS), 'model': (EMBEDDED_MODEL / 'model_index.json').is_file(),\n"
              "    'adapters': sorted(n for n, p in SHIPPED_ADAPTERS.items() if p.is_dir()),\n"
              "    'presets': {n: p.model for n, p in load_presets().items()}}))\n")
    out = json.loads(run([python, "-c", script], cwd=elsewhere).stdout.strip().splitlines()[-1])
    site = Path(out["purelib"]).resolve()
    assert Path(out["file"]).resolve() == site / "selfcascade" / "__init__.py"
    assert Path(out["assets"]) == site / "selfcascade" / "assets" and not Path(out["assets"]).is_relative_to(ROOT)
    assert out["model"] and out["adapters"] == ["shapes-adapter", "shapes-video-adapter"]
    shapes = {name for name, model in out["presets"].items() if name.startswith("Shapes")}
    assert len(shapes) == 2 and len(out["presets"]) == len(list((ASSETS / "presets").glob("*.json")))
