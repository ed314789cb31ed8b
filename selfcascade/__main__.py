"""python -m selfcascade ..., and the `selfcascade` command an install puts on the PATH (pyproject.toml's
[project.scripts] points here, so both quiet the libraries the same way)."""

import os
import sys


def main(argv: list[str] | None = None) -> int:
    # Before anything imports transformers or diffusers: their import-time notes (e.g. no torchvision) and loading
    # bars are not for the command line's users, whose stderr carries one line per error.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    from selfcascade.ui.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
