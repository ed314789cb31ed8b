"""A batch: one request and a list of prompts become numbered jobs, split across processes.

Job k of a batch (k = 0 .. n-1, prompt-major: every image of the first prompt, then of the second, ...) runs
with seed `request.seed + k`. The rule depends only on the job's place in the batch, never on how many
processes share it, so `torchrun --nproc_per_node 2` writes the same images as one process. Each process
takes a contiguous share of the jobs (accelerate's `split_between_processes`) and writes each under a name
that starts with the job's number (`job_filename`): no two processes write the same file.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from selfcascade.cascade.request import GenerationRequest, check_seed, check_text, is_whole
from selfcascade.errors import InvalidRequest
from selfcascade.files.hosting import MAX_PROMPT_CHARS, MAX_SEED, cap
from selfcascade.models.placement import process_state

MAX_IMAGES_PER_PROMPT = cap("SELFCASCADE_MAX_IMAGES_PER_PROMPT", 64, 8)
MAX_JOBS = cap("SELFCASCADE_MAX_BATCH_JOBS", 10_000, 64)  # images of one batch, all prompts together
MAX_PROMPTS_FILE_BYTES = 4 * 2**20  # 10,000 prompts of 400 characters
SLUG_CHARS = 48  # of the prompt in a file name


@dataclass(frozen=True)
class Job:
    """One image of a batch: its place in the whole batch, its prompt's place and its place among that prompt's
    images, and the request that makes it (the batch's, with this prompt and this seed)."""

    index: int
    prompt_index: int
    image_index: int
    request: GenerationRequest


def batch_jobs(request: GenerationRequest, prompts: list[str] | None, num_images: int) -> list[Job]:
    """`num_images` jobs per prompt (`prompts` None: the request's own prompt), job k seeded `request.seed + k`.

    InvalidRequest (one line) for a count that is not a whole number from 1 to MAX_IMAGES_PER_PROMPT, more
    than MAX_JOBS images in all, no prompts, a prompt that is not text or too long, or seeds past 2^63 - 1."""
    if not is_whole(num_images) or not 1 <= num_images <= MAX_IMAGES_PER_PROMPT:
        raise InvalidRequest(f"the number of images must be a whole number from 1 to {MAX_IMAGES_PER_PROMPT} "
                             f"per prompt, not {num_images!r}")
    prompts = [request.prompt] if prompts is None else list(prompts)
    if not prompts:
        raise InvalidRequest("a batch needs at least one prompt")
    total = len(prompts) * num_images
    if total > MAX_JOBS:
        raise InvalidRequest(f"{len(prompts)} prompts x {num_images} images = {total} images: at most {MAX_JOBS} "
                             "are made in one batch")
    for prompt in prompts:
        check_text(prompt, "prompt", MAX_PROMPT_CHARS)
    check_seed(request.seed)
    if request.seed + total - 1 > MAX_SEED:
        raise InvalidRequest(f"seeds {request.seed} to {request.seed} + {total - 1} go past 2^63 - 1 ({MAX_SEED}); "
                             "choose a smaller --seed")
    return [Job(prompt_index * num_images + image_index, prompt_index, image_index,
                replace(request, prompt=prompt, seed=request.seed + prompt_index * num_images + image_index))
            for prompt_index, prompt in enumerate(prompts) for image_index in range(num_images)]


def read_prompts(path: str | Path) -> list[str]:
    """The prompts of a text file: one a line, UTF-8, blank lines and lines starting with '#' skipped, each
    stripped of surrounding spaces. InvalidRequest (one line, naming the file by its name) for a file that is
    missing, a folder, above MAX_PROMPTS_FILE_BYTES, not UTF-8, without prompts, or with a prompt above
    MAX_PROMPT_CHARS (the line is named)."""
    path = Path(path)
    label = f"prompts file {path.name}"
    try:
        if path.is_dir():
            raise InvalidRequest(f"{label} is a folder; give a text file with one prompt a line")
        size = path.stat().st_size
        if size > MAX_PROMPTS_FILE_BYTES:
            raise InvalidRequest(f"{label} is {size:,} bytes: at most {MAX_PROMPTS_FILE_BYTES:,} are read")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidRequest(f"{label}: no such file") from None
    except OSError as error:
        raise InvalidRequest(f"{label} could not be read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise InvalidRequest(f"{label} is not UTF-8 text (line {line})") from None
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        prompt = line.strip()
        if not prompt or prompt.startswith("#"):
            continue
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"{label}, line {number}: the prompt is {len(prompt)} characters long: at most "
                                 f"{MAX_PROMPT_CHARS} are accepted")
        prompts.append(prompt)
    if not prompts:
        raise InvalidRequest(f"{label} has no prompts")
    return prompts


def slug(text: str, limit: int = SLUG_CHARS) -> str:
    """`text` for a file name: ASCII lower-case letters, digits and single hyphens, at most `limit` characters
    (cut at a hyphen when one is near), "image" when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(words) > limit:
        cut = words[:limit + 1]
        words = cut[:cut.rfind("-")] if cut.rfind("-") > limit // 2 else words[:limit]
        words = words.strip("-")
    return words or "image"


def job_filename(job: Job, total: int) -> str:
    """The PNG name of `job` in a batch of `total`: its zero-padded number and a slug of its prompt, e.g.
    `00003-a-red-circle.png`. The number makes it unique within the batch, so no two processes write one file."""
    digits = max(5, len(str(max(total - 1, 0))))
    return f"{job.index:0{digits}d}-{slug(job.request.prompt)}.png"


def jobs_for_this_process(jobs: list[Job], state=None) -> list[Job]:
    """The jobs of this process: a contiguous share of `jobs` by accelerate's `split_between_processes` (the
    first ranks take one more when they do not divide evenly); all of them in a one-process run. `state`:
    accelerate's PartialState (default: the process's, selfcascade.models.placement.process_state)."""
    state = state if state is not None else process_state()
    with state.split_between_processes(list(jobs)) as mine:
        return list(mine)


def ranks_that_failed(state, failed: bool) -> list[int]:
    """Wait for every process of the launch, then the ranks whose jobs failed (`failed`: this one's), the same
    list on every process: each can then exit non-zero when any did."""
    state.wait_for_everyone()
    if state.num_processes == 1:
        return [state.process_index] if failed else []
    from accelerate.utils import gather_object

    return [rank for rank, flag in enumerate(gather_object([bool(failed)])) if flag]
