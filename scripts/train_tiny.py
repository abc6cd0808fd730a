"""Train the bundled tiny MusicGen (codec fit -> clip encoding -> LM), resumable; see smitin.tiny.training.

python scripts/train_tiny.py --install   # renders the training songs under ~/.cache/smitin if missing
python scripts/train_tiny.py --data DIR [DIR ...] --out RUN [--init-from MODEL] ...   # see the model card
"""

import sys

from smitin.tiny import train_main

if __name__ == "__main__":
    sys.exit(train_main())
