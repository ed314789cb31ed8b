"""Where the app runs, and the caps that follow: a shared Hugging Face Space gets tighter defaults.

A Space sets SPACE_ID in the environment. Every cap is read from an environment variable, so an operator
can change it without code; the Space default applies only when the variable is not set.
"""

from __future__ import annotations

import os

ON_SPACE = bool(os.environ.get("SPACE_ID"))


def cap(variable: str, local: int, space: int) -> int:
    """The whole-number cap `variable` from the environment, else the default for where the app runs."""
    value = os.environ.get(variable)
    return int(value) if value not in (None, "") else (space if ON_SPACE else local)


MAX_UPLOAD_MB = cap("SELFCASCADE_MAX_UPLOAD_MB", 20, 10)  # per uploaded file, enforced by gradio
