"""When a stem plays: block energies and the relative gate that marks a stem active.

Shared by the dataset readers (`smitin.data`), the renderer (`smitin.synth`) and the tiny model's
tagging targets (`smitin.tiny`): one gate, so "drums present" means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLOCK_S = 0.1  # seconds per energy block used by the activity gate
SMOOTH_BLOCKS = 5  # blocks averaged (0.5 s) before gating
FLOOR_DB = -80.0  # absolute floor of the gate, dBFS


def block_energy(mono: np.ndarray, sample_rate: int, block_s: float = BLOCK_S) -> np.ndarray:
    """Mean-square energy per ``block_s`` block of a mono signal (a partial last block is dropped)."""
    b = max(1, int(round(block_s * sample_rate)))
    k = len(mono) // b
    return np.mean(np.square(mono[: k * b].reshape(k, b), dtype=np.float64), axis=1)


def _smooth(energy: np.ndarray, k: int = SMOOTH_BLOCKS) -> np.ndarray:
    """Centred moving average over ``k`` blocks, so the gaps between drum hits still count as playing."""
    if len(energy) == 0 or k <= 1:
        return energy
    c = np.concatenate([[0.0], np.cumsum(energy, dtype=np.float64)])
    idx = np.arange(len(energy))
    lo, hi = np.maximum(idx - k // 2, 0), np.minimum(idx + k // 2 + 1, len(energy))
    return (c[hi] - c[lo]) / (hi - lo)


def track_level(energies: Sequence[np.ndarray]) -> float:
    """Mean energy of the mix of these stems (stems taken as uncorrelated), the gate's reference."""
    return float(sum(float(np.mean(e)) for e in energies if len(e)))


def block_activity(energy: np.ndarray, level: float, gate_db: float) -> np.ndarray:
    """Blocks where a stem plays: smoothed energy above ``gate_db`` relative to the mix ``level``.

    Relative, not absolute, because collections are mixed at any level; an absolute floor
    (-80 dBFS) keeps digital silence silent when everything is quiet.
    """
    thr = max(level * 10.0 ** (gate_db / 10.0), 10.0 ** (FLOOR_DB / 10.0))
    return _smooth(energy) > thr
