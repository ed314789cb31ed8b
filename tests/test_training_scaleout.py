"""Algorithm 1 data-parallel: `torchrun --nproc_per_node 2 -m selfcascade train` on the CPU (gloo)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from selfcascade.shapes.train_adapter import render_examples

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]  # the `torchrun` command, of this interpreter


def test_two_cpu_processes_train_one_adapter(tmp_path):
    images = tmp_path / "images"
    render_examples(images, 6, 64, seed=0)
    out = tmp_path / "adapter"
    # --standalone picks a free rendezvous port (other test runs may use torchrun at the same time);
    # one thread per process keeps two processes on two cores.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "selfcascade", "train",
                           "--images", str(images), "--size", "64x64", "--steps", "3", "--batch", "1",
                           "--grad-accum", "2", "--log-every", "1", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    # Only the main process prints: one start line, one line per step, one "wrote".
    starts = [line for line in done.stderr.splitlines() if line.startswith("training on")]
    assert starts == ["training on 2 processes (MULTI_CPU, gloo), cpu:0: effective batch 4 = batch 1 x "
                      "2 processes x 2 accumulation steps; mixed precision no; 3 steps"], done.stderr[-3000:]
    assert sum(line.startswith("step ") for line in done.stderr.splitlines()) == 3
    assert done.stdout.count("wrote") == 1
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "adapter.safetensors", "config.json",
                                                     "diffusion_pytorch_model.safetensors", "training_log.json"]
    log = json.loads((out / "training_log.json").read_text())
    assert log["processes"] == 2 and log["effective_batch"] == 4 and len(log["losses"]) == 3
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["processes"] == 2 and config["base_model"] == "embedded"
