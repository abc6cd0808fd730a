"""``python -m smitin.cli``: the same as the ``smitin`` command."""

import sys

from . import main

sys.exit(main())
