"""The headline's statistics on cases with a known answer."""

import numpy as np
import pytest

from smitin.experiment.stats import (
    accuracy_at,
    bootstrap_diff,
    crossfit_accuracy,
    paired,
    sign_test,
    youden_threshold,
)


def test_identical_arrays_give_no_difference():
    a = np.array([0.1, 0.5, 0.9, 0.3])
    res = paired([1, 0, 1, 0], [1, 0, 1, 0], a, a.copy(), groups=[0, 0, 1, 1])
    assert (res.diff, res.low, res.high, res.p) == (0.0, 0.0, 0.0, 1.0)
    assert res.rate == res.base == 0.5 and res.n == 4 and res.toward == res.away == 0
    down = paired([1, 1], [1, 1], [0.5, 0.5], [0.2, 0.6], higher=False)
    assert (down.toward, down.away) == (1, 1)


def test_sign_test_all_positive_and_ties():
    for n in (1, 5, 10):
        assert sign_test(np.zeros(n), np.ones(n)) == pytest.approx(2 * 0.5**n)
        assert sign_test(np.ones(n), np.zeros(n)) == pytest.approx(2 * 0.5**n)  # two-sided
    # ties are dropped: 6 positive, 4 ties -> as 6 of 6
    assert sign_test(np.zeros(10), [1] * 6 + [0] * 4) == pytest.approx(2 * 0.5**6)
    assert sign_test([0, 0], [1, -1]) == 1.0
    # against scipy's exact binomial test
    from scipy.stats import binomtest

    assert sign_test(np.zeros(20), [1] * 14 + [-1] * 6) == pytest.approx(binomtest(14, 20, 0.5).pvalue)


def test_bootstrap_interval_covers_the_true_difference():
    rng = np.random.default_rng(0)
    hits = 0
    for rep in range(40):
        prompts = np.repeat(np.arange(24), 2)  # 24 prompts x 2 seeds
        effect = 0.3 + 0.2 * rng.standard_normal(24)[prompts]  # prompt-level variation
        d = effect + 0.3 * rng.standard_normal(48)
        m, lo, hi = bootstrap_diff(d, prompts, n_boot=1000, seed=rep)
        assert lo <= m <= hi
        hits += lo <= 0.3 <= hi
    assert hits >= 34  # ~95% nominal coverage, with room for a small sample


def test_bootstrap_resamples_prompts_not_pairs():
    # two prompts, each with many identical pairs: resampling pairs would give a tiny interval
    d = np.array([0.0] * 20 + [1.0] * 20)
    _, lo, hi = bootstrap_diff(d, [0] * 20 + [1] * 20, seed=0)
    assert lo == 0.0 and hi == 1.0
    _, lo_pairs, hi_pairs = bootstrap_diff(d, None, seed=0)
    assert hi_pairs - lo_pairs < 0.5
    assert all(np.isnan(bootstrap_diff([])))


def test_youden_threshold_separates_and_beats_a_fixed_half():
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.70, 0.75, 0.80, 0.85, 0.90, 0.95]  # all above 0.5: a 0.5 threshold says 'present'
    thr = youden_threshold(labels, scores)
    assert 0.80 < thr < 0.85
    assert accuracy_at(labels, scores, thr) == 1.0 and accuracy_at(labels, scores, 0.5) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        youden_threshold([1, 1], [0.1, 0.2])


def test_crossfit_accuracy_fits_on_one_half_and_scores_the_other():
    labels = np.array([0, 1] * 4)
    scores = np.array([0.1, 0.9] * 4)
    groups = ["a", "a", "b", "b", "c", "c", "d", "d"]
    assert crossfit_accuracy(labels, scores, groups) == 1.0
    assert np.isnan(crossfit_accuracy(labels, scores, ["a"] * 8))
