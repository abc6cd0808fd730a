"""The by-track validation split: which tracks train the probes, which validate them, and whether
there are enough of each class on both sides (checked from labels and track names alone, so
before any extraction).
"""

from __future__ import annotations

import numpy as np

from .data.errors import DataError

__all__ = ["check_split", "split_by_group"]


def split_by_group(groups, val_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Boolean mask of validation samples: whole tracks go to one side, never straddle it."""
    names = np.asarray(groups)
    unique = np.unique(names)
    if len(unique) < 2:
        raise ValueError(
            f"need segments from at least 2 tracks to validate by track, got {len(unique)}; add more tracks"
        )
    rng = np.random.default_rng(seed)
    n_val = min(len(unique) - 1, max(1, round(val_fraction * len(unique))))
    val_tracks = rng.permutation(unique)[:n_val]
    return np.isin(names, val_tracks)


def check_split(
    labels,
    groups,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    source: str = "the data",
    unit: str = "tracks",
) -> np.ndarray:
    """The by-track validation mask `train` will use, or a DataError saying what to add.

    Cheap (labels and track names only), so callers run it before extracting anything: each
    class must be in at least 2 tracks, and both sides of the split must hold both classes.
    `source` names the data (its folder) and `unit` what a group is ("tracks", or "clips").
    """
    y, names = np.asarray(labels), np.asarray(groups)
    if set(np.unique(y).tolist()) != {0, 1}:
        raise DataError(
            f"{source}: probes need segments of both classes (trait present and absent); "
            f"add {unit} with and without the trait"
        )
    per_class = {c: len(np.unique(names[y == c])) for c in (1, 0)}
    kinds = {1: "with the trait", 0: "without it"}
    if unit == "clips":
        kinds = {1: "with the trait (positive folder)", 0: "without it (negative folder)"}
    if per_class[1] == per_class[0] == len(np.unique(names)):  # paired: every track gives both classes
        counts = f"segments from {_count(per_class[1], unit)}"
        short = [f"where the trait plays (each gives both classes; {unit} used: {per_class[1]})"]
        short = short if per_class[1] < 2 else []
    else:
        counts = f"{_count(per_class[1], unit)} {kinds[1]} and {per_class[0]} {kinds[0]}"
        short = [kinds[c] for c in (1, 0) if per_class[c] < 2]
    if short:
        raise DataError(
            f"{source}: {counts}; validating by track needs each class in at least 2 {unit} (one to "
            f"train on, one to validate): add {unit} {' and '.join(short)}"
        )
    val = split_by_group(names, val_fraction, seed)
    for side, mask in (("training", ~val), ("validation", val)):
        missing = [kinds[c] for c in (1, 0) if not (y[mask] == c).any()]
        if missing:
            raise DataError(
                f"{source}: {counts}; the split by track (validation share {val_fraction:g}, seed {seed}) "
                f"leaves no {unit} {' and '.join(missing)} on the {side} side: add {unit}, raise the "
                "validation share (--val-fraction) or try another split seed (--split-seed)"
            )
    return val


def _count(n: int, unit: str) -> str:
    return f"{n} {unit[:-1] if n == 1 else unit}"
