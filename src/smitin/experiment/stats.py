"""The statistics of the headline: calibrated thresholds, paired differences, their intervals and tests.

- `youden_threshold`: the decision threshold that maximises Youden's J = TPR - FPR on labelled
  scores (real with/without pairs), instead of a fixed 0.5.
- `crossfit_accuracy`: accuracy at a Youden threshold fitted on the other half of the groups
  (tracks), so the reported accuracy is not the one the threshold was chosen on.
- `bootstrap_diff`: the mean paired difference with a percentile bootstrap interval over
  clusters (prompts: each resampled prompt carries all its seeds' pairs).
- `sign_test`: exact two-sided binomial sign test on paired scores, ties dropped.
- `paired`: all of the above for one steered row against its unsteered row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ArrayLike = Sequence[float] | Sequence[int] | Sequence[bool] | np.ndarray


def youden_threshold(labels: ArrayLike, scores: ArrayLike) -> float:
    """Threshold maximising TPR - FPR (present when score >= threshold); midpoints between scores.

    Ties in J go to the lowest such threshold. Needs scores of both classes.
    """
    y, s = np.asarray(labels).astype(bool), np.asarray(scores, float)
    if y.all() or not y.any():
        raise ValueError("a Youden threshold needs scores of both classes")
    cand = np.unique(s)
    mids = np.concatenate([[cand[0] - 1e-9], (cand[1:] + cand[:-1]) / 2, [cand[-1] + 1e-9]])
    tpr = (s[y][None, :] >= mids[:, None]).mean(1)
    fpr = (s[~y][None, :] >= mids[:, None]).mean(1)
    return float(mids[int(np.argmax(tpr - fpr))])


def accuracy_at(labels: ArrayLike, scores: ArrayLike, threshold: float) -> float:
    """Share of clips decided right at `threshold` (present when score >= threshold)."""
    y, s = np.asarray(labels).astype(bool), np.asarray(scores, float)
    return float(((s >= threshold) == y).mean()) if len(y) else float("nan")


def crossfit_accuracy(labels: ArrayLike, scores: ArrayLike, groups: Sequence[str]) -> float:
    """Accuracy with the threshold fitted on the other half of the groups (2 folds, by group).

    NaN when a fold lacks one of the classes (too few groups to cross-fit).
    """
    y, s, g = np.asarray(labels).astype(bool), np.asarray(scores, float), np.asarray(groups)
    names = sorted(set(g.tolist()))
    if len(names) < 2:
        return float("nan")
    fold = np.isin(g, names[::2])
    right = 0
    for test in (fold, ~fold):
        train = ~test
        if y[train].all() or not y[train].any():
            return float("nan")
        thr = youden_threshold(y[train], s[train])
        right += int(((s[test] >= thr) == y[test]).sum())
    return right / len(y)


def bootstrap_diff(
    diff: ArrayLike,
    groups: Sequence[Any] | np.ndarray | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of paired differences and its percentile bootstrap interval, resampling whole groups.

    `groups` names each pair's cluster (its prompt); every resampled group brings all its pairs,
    so seeds of one prompt are not counted as independent evidence. None: each pair is a group.
    Returns (mean, low, high); NaNs when there are no pairs.
    """
    d = np.asarray(diff, float)
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    g = np.arange(len(d)) if groups is None else np.asarray(groups)
    _, inv = np.unique(g, return_inverse=True)
    sums = np.bincount(inv, weights=d)
    counts = np.bincount(inv).astype(float)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(sums), (n_boot, len(sums)))
    boots = sums[pick].sum(1) / counts[pick].sum(1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(boots, [tail, 100 - tail])
    return float(d.mean()), float(lo), float(hi)


def sign_test(before: ArrayLike, after: ArrayLike) -> float:
    """Exact two-sided sign test on paired scores (after - before), ties dropped; 1 when all tie.

    p = min(1, 2 * P(X <= min(pos, neg))), X ~ Binomial(pos + neg, 1/2).
    """
    d = np.asarray(after, float) - np.asarray(before, float)
    pos, neg = int((d > 0).sum()), int((d < 0).sum())
    n = pos + neg
    if n == 0:
        return 1.0
    k = min(pos, neg)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return float(min(1.0, 2 * tail))


@dataclass
class Paired:
    """One judge's verdict on a steered row against its unsteered row, pair by pair."""

    rate: float  # success of the row: share of clips with the trait (without it, for removal)
    base: float  # the same share in the unsteered row
    diff: float  # mean paired difference of success (row - base)
    low: float  # 95% bootstrap interval of diff over prompts
    high: float
    p: float  # sign test on the paired scores
    n: int  # pairs
    toward: int = 0  # pairs whose score moved toward success (up; down for removal)
    away: int = 0  # pairs whose score moved away from it (ties are neither)


def paired(
    base_success: ArrayLike,
    success: ArrayLike,
    base_scores: ArrayLike,
    scores: ArrayLike,
    groups: Sequence[Any] | np.ndarray | None = None,
    seed: int = 0,
    higher: bool = True,
) -> Paired:
    """Success rates, their paired difference with a bootstrap interval over `groups`, and the sign test.

    `higher`: a higher score means success (False for removal), which orients `toward` / `away`.
    """
    b, s = np.asarray(base_success, float), np.asarray(success, float)
    if b.shape != s.shape:
        raise ValueError(f"paired arrays differ in shape: {b.shape} vs {s.shape}")
    diff, lo, hi = bootstrap_diff(s - b, groups, seed=seed)
    moved = (np.asarray(scores, float) - np.asarray(base_scores, float)) * (1 if higher else -1)
    return Paired(
        rate=float(s.mean()) if len(s) else float("nan"),
        base=float(b.mean()) if len(b) else float("nan"),
        diff=diff,
        low=lo,
        high=hi,
        p=sign_test(base_scores, scores),
        n=len(s),
        toward=int((moved > 0).sum()),
        away=int((moved < 0).sum()),
    )
