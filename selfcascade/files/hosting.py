"""Where the app runs, and the caps that follow: a shared Hugging Face Space gets tighter defaults.

A Space sets SPACE_ID in the environment. Every cap is read from an environment variable, so an operator
can change it without code; the Space default applies only when the variable is not set. Every size,
count and length a visitor sends is checked against these caps before any work or file copy.
"""

from __future__ import annotations

import os

ON_SPACE = bool(os.environ.get("SPACE_ID"))


def cap(variable: str, local: int, space: int) -> int:
    """The whole-number cap `variable` from the environment, else the default for where the app runs."""
    value = os.environ.get(variable)
    return int(value) if value not in (None, "") else (space if ON_SPACE else local)


MAX_UPLOAD_MB = cap("SELFCASCADE_MAX_UPLOAD_MB", 20, 10)  # per uploaded file, enforced by gradio
MAX_SIDE = cap("SELFCASCADE_MAX_SIDE", 4096, 2048)  # pixels per side of a generated image or video
MAX_STEPS = cap("SELFCASCADE_MAX_STEPS", 500, 100)  # denoising steps of one stage
MAX_FRAMES = cap("SELFCASCADE_MAX_FRAMES", 128, 32)  # frames of one video
MAX_PROMPT_CHARS = cap("SELFCASCADE_MAX_PROMPT_CHARS", 10_000, 2_000)  # the text encoders read 77 tokens anyway
MAX_NAME_CHARS = 512  # a model, VAE or adapter id or path: hub ids are at most 96 characters
MAX_STAGES = 12  # stages of one cascade: 2x per side each, 12 already spans 4096x from the first
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit number
