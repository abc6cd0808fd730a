"""What a clip sounds like apart from any instrument: loudness, noisiness, and noise to add.

The diagnosis asks whether steering turns music into noise, so it needs a noisiness reading that
no judge or probe made: spectral flatness (`experiment.keep.flatness`: near 0 for tones, 0.56 for
white noise), at the judges' 16 kHz. The noise is the experiment's (`experiment.noise`), called
by kind, level and seed.
"""

from __future__ import annotations

import numpy as np

from ..experiment.keep import flatness
from ..experiment.noise import COLOURS as NOISES
from ..experiment.noise import add_noise as _add_noise
from ..experiment.noise import noise as _noise

__all__ = ["NOISES", "add_noise", "flatness", "noise", "rms_db"]


def rms_db(audio: np.ndarray) -> np.ndarray:
    """[N, S] -> [N] RMS level in dB (full scale = 0 dB)."""
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    return 20 * np.log10(np.sqrt((x**2).mean(-1)) + 1e-9)


def noise(kind: str, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """[N, S] unit-RMS noise: "white" (flat spectrum) or "pink" (power falling as 1/f)."""
    if kind not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, not {kind!r}")
    return _noise(shape, kind, np.random.default_rng(seed))


def add_noise(audio: np.ndarray, kind: str, level: float, seed: int = 0) -> np.ndarray:
    """Each clip plus `kind` noise at `level` times the clip's own RMS (0 returns the clips)."""
    return _add_noise(audio, level, kind, np.random.default_rng(seed))
