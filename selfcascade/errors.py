"""The errors every layer raises: the leaf of the package (it imports nothing of selfcascade).

InvalidRequest carries a message meant for the user, one line: the UI shows it as "**Not run:** ...", the CLI
prints it and exits with code 2. Its kinds (a model that cannot load, not enough memory, ...) subclass it
where they are raised. Cancelled ends a run the user stopped, at its next denoising step.
"""


class InvalidRequest(ValueError):
    """A request that cannot run, with a message meant for the user."""


class Cancelled(Exception):
    """The user stopped the run; raised at the next denoising step."""
