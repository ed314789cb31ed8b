"""Batches from the CLI (selfcascade/cascade/batch.py): numbered jobs, their seeds and names, the prompts file,
"upscale my image", and the same batch on 2 processes (torchrun, gloo) against one."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import PartialState
from PIL import Image, ImageDraw

from selfcascade.cascade import batch
from selfcascade.cascade.batch import (
    MAX_IMAGES_PER_PROMPT,
    MAX_JOBS,
    batch_jobs,
    job_filename,
    jobs_for_this_process,
    ranks_that_failed,
    read_prompts,
    slug,
)
from selfcascade.cascade.request import GenerationRequest
from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import MAX_SEED
from selfcascade.files.images import read_png_metadata

from .cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]  # the `torchrun` command, of this interpreter
PROMPTS = ["a large red circle", "a small blue square on a black background", "a green triangle"]


def request(**changes) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "a red circle", "width": 128, "height": 128, "seed": 7, **changes})


def test_jobs_are_numbered_over_the_batch_and_seeded_by_their_place():
    base = request()
    jobs = batch_jobs(base, ["a red circle", "a blue square"], 3)
    assert [job.index for job in jobs] == list(range(6))
    assert [(job.prompt_index, job.image_index) for job in jobs] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert [job.request.seed for job in jobs] == [7, 8, 9, 10, 11, 12]
    assert [job.request.prompt for job in jobs] == ["a red circle"] * 3 + ["a blue square"] * 3
    assert all(job.request.width == 128 and job.request.mode == "tuning-free" for job in jobs)
    assert base.seed == 7 and base.prompt == "a red circle"  # copies: the request itself is unchanged
    assert [job.request.seed for job in batch_jobs(base, None, 2)] == [7, 8]  # None: the request's prompt
    assert [job.request.prompt for job in batch_jobs(base, None, 2)] == ["a red circle"] * 2


def test_file_names_are_numbered_slugs():
    jobs = batch_jobs(request(), ["a red circle", "Ünïcode: ça/va? <*> " + "long words " * 20, "!!!"], 1)
    names = [job_filename(job, len(jobs)) for job in jobs]
    assert names[0] == "00000-a-red-circle.png" and names[2] == "00002-image.png"
    assert names[1].startswith("00001-unicode-ca-va-long-words") and len(names[1]) <= 6 + batch.SLUG_CHARS + 4
    assert all(set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-.") for name in names)
    assert job_filename(jobs[0], 123_456) == "000000-a-red-circle.png"  # as many digits as the batch needs
    assert slug("--a  b--") == "a-b" and slug("") == "image"


@pytest.mark.parametrize("prompts,count,message", [
    (None, 0, "from 1 to"), (None, MAX_IMAGES_PER_PROMPT + 1, "from 1 to"), (None, 2.0, "whole number"),
    (None, True, "whole number"), ([], 1, "at least one prompt"), (["x"] * (MAX_JOBS // 2 + 1), 2, "at most"),
    ([7], 1, "must be text"),
])
def test_bad_batches_are_one_line_errors(prompts, count, message):
    with pytest.raises(InvalidRequest, match=message) as error:
        batch_jobs(request(), prompts, count)
    assert "\n" not in str(error.value)


def test_seeds_past_the_cap_are_refused():
    assert batch_jobs(request(seed=MAX_SEED - 1), None, 2)[-1].request.seed == MAX_SEED
    with pytest.raises(InvalidRequest, match="past 2\\^63 - 1"):
        batch_jobs(request(seed=MAX_SEED - 1), None, 3)


class Rank:
    """What split_between_processes reads of a PartialState, for rank `index` of `count`."""

    def __init__(self, index: int, count: int):
        self.process_index, self.num_processes, self.device = index, count, torch.device("cpu")

    split_between_processes = PartialState.split_between_processes


def test_each_process_takes_a_contiguous_share_and_every_job_runs_once():
    jobs = batch_jobs(request(), PROMPTS, 2)
    assert jobs_for_this_process(jobs) == jobs  # this test process: a one-process run
    for count in (2, 3, 4, 7):
        shares = [jobs_for_this_process(jobs, Rank(rank, count)) for rank in range(count)]
        assert [job for share in shares for job in share] == jobs
    assert [len(jobs_for_this_process(jobs[:2], Rank(rank, 3))) for rank in range(3)] == [1, 1, 0]


def test_one_process_reports_its_own_failure():
    assert ranks_that_failed(PartialState(cpu=True), False) == []
    assert ranks_that_failed(PartialState(cpu=True), True) == [0]


def test_read_prompts_skips_blanks_and_comments(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes("\ufeffa red circle\r\n\r\n# a comment\n   \n  a blue square  \n  # indented comment\nçà\n"
                     .encode())
    assert read_prompts(path) == ["a red circle", "a blue square", "çà"]


def _bad_prompt_files(tmp_path, monkeypatch):
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    (tmp_path / "latin1.txt").write_bytes(b"a red circle\nun caf\xe9\n")
    (tmp_path / "big.txt").write_text("a red circle\n" * 100)
    (tmp_path / "long.txt").write_text("a red circle\n# fine\n" + "x" * 60 + "\n")
    (tmp_path / "folder.txt").mkdir()
    monkeypatch.setattr(batch, "MAX_PROMPTS_FILE_BYTES", 1000)
    monkeypatch.setattr(batch, "MAX_PROMPT_CHARS", 50)


@pytest.mark.parametrize("name,message", [
    ("missing.txt", "prompts file missing.txt: no such file"),
    ("folder.txt", "prompts file folder.txt is a folder; give a text file with one prompt a line"),
    ("latin1.txt", "prompts file latin1.txt is not UTF-8 text (line 2)"),
    ("empty.txt", "prompts file empty.txt has no prompts"),
    ("big.txt", "prompts file big.txt is 1,300 bytes: at most 1,000 are read"),
    ("long.txt", "prompts file long.txt, line 3: the prompt is 60 characters long: at most 50 are accepted"),
])
def test_bad_prompt_files_are_one_line_errors(tmp_path, monkeypatch, name, message):
    _bad_prompt_files(tmp_path, monkeypatch)
    with pytest.raises(InvalidRequest) as error:
        read_prompts(tmp_path / name)
    assert str(error.value) == message
    assert str(tmp_path) not in str(error.value)  # the file by its name, never its folder


def test_a_batch_of_2_prompts_x_2_images_writes_4_pngs_with_their_seeds(tmp_path, capsys, one_thread):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n\n# not a prompt\na blue square\n")
    code, out, err = run_cli(capsys, "--prompts", prompts, "--num-images", 2, "--out-dir", tmp_path / "out",
                             "--size", "64x64", "--steps", 2, "--seed", 3, "--quiet")
    assert code == 0, err
    assert err.splitlines()[0] == "1 process, 4 images (2 prompts x 2) on cpu"
    names = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert names == ["00000-a-red-circle.png", "00001-a-red-circle.png", "00002-a-blue-square.png",
                     "00003-a-blue-square.png"]
    lines = out.splitlines()
    assert len(lines) == 4 and all(line.startswith(f"wrote {tmp_path / 'out' / name} (64x64, ")
                                   for line, name in zip(lines, names)), out
    records = [read_png_metadata(tmp_path / "out" / name) for name in names]
    assert [(record["prompt"], record["seed"]) for record in records] == [
        ("a red circle", 3), ("a red circle", 4), ("a blue square", 5), ("a blue square", 6)]
    assert all(record["steps"] == 2 and record["pivot_image"] is False for record in records)


def test_image_is_upscaled_to_the_requested_size(tmp_path, capsys, one_thread):
    picture = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(picture).ellipse((12, 12, 52, 52), fill="red")
    picture.save(tmp_path / "mine.png")
    code, out, err = run_cli(capsys, "--prompt", "a large red circle", "--image", tmp_path / "mine.png",
                             "--size", "128x128", "--steps", 2, "--out", tmp_path / "big.png", "--quiet")
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path / 'big.png'} (128x128, ")
    assert Image.open(tmp_path / "big.png").size == (128, 128)
    record = read_png_metadata(tmp_path / "big.png")
    assert record["pivot_image"] is True and (record["width"], record["height"]) == (128, 128)


BAD = [
    (["--prompts", "empty.txt", "--out-dir", "out"], "prompts file empty.txt has no prompts"),
    (["--prompt", "a red circle", "--num-images", "0", "--out-dir", "out"], "from 1 to 64"),
    (["--prompt", "a red circle", "--prompts", "prompts.txt", "--out-dir", "out"], "not allowed with argument"),
    (["--prompts", "prompts.txt", "--out-dir", "prompts.txt"], "--out-dir prompts.txt is a file, not a folder"),
    (["--prompt", "a red circle", "--image", "prompts.txt", "--out", "out/x.png"], "prompts.txt is not an image"),
    (["--prompts", "prompts.txt", "--out", "out/x.png"], "needs --out-dir"),
    (["--prompt", "a red circle", "--num-images", "2", "--out", "out/x.png"], "needs --out-dir"),
    (["--prompts", "missing.txt", "--out-dir", "out"], "prompts file missing.txt: no such file"),
    (["--prompt", "a red circle"], "one of the arguments --out --out-dir is required"),
    (["--out-dir", "out"], "one of the arguments --prompt --prompts is required"),
]


@pytest.mark.parametrize("arguments,message", BAD)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts.txt").write_text("a red circle\n")
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    code, out, err = run_cli(capsys, *arguments, "--size", "128x128", "--steps", 2)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert out == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.txt", "prompts.txt"]


def torchrun(*arguments) -> subprocess.CompletedProcess:
    # --standalone picks a free rendezvous port; torchrun gives each process one thread (OMP_NUM_THREADS=1).
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "selfcascade", "generate",
                           *map(str, arguments)], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)


def test_two_processes_write_each_image_once_and_the_same_pixels_as_one(tmp_path, capsys, one_thread):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    common = ["--prompts", prompts, "--size", "128x128", "--steps", 3, "--seed", 11, "--quiet"]
    # One process, one thread: as each torchrun process runs. (The same batch at another thread count can
    # differ by 1 in a pixel value: torch's kernels then sum in another order.)
    code, _, err = run_cli(capsys, *common, "--out-dir", tmp_path / "one")
    assert code == 0, err
    done = torchrun(*common, "--out-dir", tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes, 3 images (3 prompts x 1) on cpu" in done.stderr.splitlines(), done.stderr[-3000:]
    assert done.stderr.count("memory: ") == 1  # the main process alone prints the summary
    assert done.stdout.count("wrote ") == 3
    one, two = (sorted((tmp_path / folder).iterdir()) for folder in ("one", "two"))
    assert [path.name for path in two] == [path.name for path in one] == [
        "00000-a-large-red-circle.png", "00001-a-small-blue-square-on-a-black-background.png",
        "00002-a-green-triangle.png"]
    for mine, theirs in zip(one, two):
        assert np.array_equal(np.asarray(Image.open(mine)), np.asarray(Image.open(theirs))), mine.name
        assert read_png_metadata(theirs)["seed"] == read_png_metadata(mine)["seed"]
    assert [read_png_metadata(path)["seed"] for path in two] == [11, 12, 13]


def test_a_failed_process_fails_the_launch(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    (tmp_path / "out" / "00002-a-green-triangle.png").mkdir(parents=True)  # rank 1 cannot write its image
    done = torchrun("--prompts", prompts, "--size", "64x64", "--steps", 2, "--quiet", "--out-dir", tmp_path / "out")
    assert done.returncode != 0
    assert "selfcascade: error: 1 of 2 processes failed (rank 1; its own error line says why)" in done.stderr
    assert "Is a directory" in done.stderr
    assert done.stdout.count("wrote ") == 2  # rank 0's images are written; rank 1 waited for it, not the reverse
