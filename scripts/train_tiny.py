"""Train the bundled tiny MusicGen (codec fit -> clip encoding -> LM), resumable; see smitin.tiny.

python scripts/train_tiny.py --data /work/data/tiny16k --out /work/runs/tiny --install
"""

import sys

from smitin.tiny import train_main

if __name__ == "__main__":
    sys.exit(train_main())
