"""python -m selfcascade ..."""

import sys

from selfcascade.cli import main

sys.exit(main())
