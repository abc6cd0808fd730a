"""``python -m smitin`` (and ``torchrun -m smitin``): the same as the ``smitin`` command."""

import sys

from smitin.cli import main

if __name__ == "__main__":
    sys.exit(main())
