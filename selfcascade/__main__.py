"""python -m selfcascade ..."""

import os
import sys

# Before anything imports transformers or diffusers: their import-time notes (e.g. no torchvision) and loading
# bars are not for the command line's users, whose stderr carries one line per error.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

from selfcascade.ui.cli import main  # noqa: E402

sys.exit(main())
