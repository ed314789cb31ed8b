"""python -m selfcascade ..."""

import sys

from selfcascade.ui.cli import main

sys.exit(main())
