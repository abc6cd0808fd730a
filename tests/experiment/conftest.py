"""Fixtures of the experiment tests: synthetic clips with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

SR = 16000


def _tone_clips(n, seed, drums: bool, seconds=2.0):
    """Sine chords, optionally with noise bursts (a 'drum' track), random levels and pitches."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    out = []
    for _ in range(n):
        f = rng.uniform(110, 440)
        x = sum(np.sin(2 * np.pi * f * k * t + rng.uniform(0, 6)) / k for k in (1, 1.5, 2))
        if drums:
            hits = np.exp(-30 * ((t * rng.uniform(3, 6)) % 1))
            x = x + 2.0 * rng.standard_normal(len(t)) * hits
        out.append((rng.uniform(0.05, 0.5) * x).astype(np.float32))
    return np.stack(out)


@pytest.fixture
def tone_clips():
    """`tone_clips(n, seed, drums, seconds=2.0)` -> [n, S] clips at 16 kHz."""
    return _tone_clips
