"""`python -m aiprod_core.cli`: the `aiprod` command without the console script (e.g. under torchrun)."""

import sys

from . import main

sys.exit(main())
