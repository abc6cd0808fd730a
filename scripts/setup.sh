#!/usr/bin/env bash
# Set up a smitin development machine. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- renderer system packages ---
# FluidSynth + a General MIDI soundfont render stems; mma (Musical MIDI Accompaniment) supplies grooves.
# Without them `smitin data synth` falls back to procedural songs (no mma) or stops with an install hint.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    missing=""
    for pkg in fluidsynth fluid-soundfont-gm mma; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
    fi
    # mma needs its groove database; build it once if the package did not.
    if command -v mma >/dev/null 2>&1 && [ ! -e /usr/share/mma/lib/stdlib/.mmaDB ]; then
        mma -G >/dev/null 2>&1 || echo "warning: 'mma -G' failed; mma grooves may be unavailable" >&2
    fi
else
    echo "note: not root or no apt-get; install fluidsynth, fluid-soundfont-gm and mma yourself" >&2
fi
# --- end renderer system packages ---

# --- UI test browser and the studio's audio stream ---
# The studio's gapless streaming player needs ffmpeg (Gradio encodes the stream's chunks with it).
# tests/ui/test_app.py drives the steering studio in Debian's headless Chromium through the pip
# `playwright` package (installed with the dev extra). Never `playwright install`: it downloads
# a browser of its own. Without Chromium the browser test skips and says why.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    missing=""
    for pkg in chromium chromium-driver ffmpeg; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
    fi
else
    echo "note: not root or no apt-get; install chromium (UI browser test) and ffmpeg (studio stream) yourself" >&2
fi
# --- end UI test browser and the studio's audio stream ---

# --- python packages ---
# torch first, pinned: on these machines 2.13.0 is a CPU wheel already on disk, while an unpinned
# torch would pull a multi-GB CUDA build. With a GPU, install the torch you want before this script.
if ! python -c "import torch" >/dev/null 2>&1; then
    python -m pip install -q "torch==2.13.0"
fi
python -m pip install -q -e ".[dev]"
# --- end python packages ---
echo "smitin is set up: try 'smitin --help', 'smitin demo', or 'python -m pytest'"
