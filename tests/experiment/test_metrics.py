"""Each metric on inputs with a known answer."""

import numpy as np
import pytest
import torch

from smitin.experiment.features import window_embeddings
from smitin.experiment.metrics import (
    Standardiser,
    auc,
    continuation_similarity,
    cosine,
    frechet_distance,
    pearson,
    token_nll,
)

SR = 16000


def test_frechet_distance_zero_on_itself_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 8))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    d = [frechet_distance(a, a + s) for s in (0.5, 1.0, 2.0)]
    assert d == pytest.approx([8 * 0.25, 8 * 1.0, 8 * 4.0], rel=1e-6)  # a pure mean shift: |mu|^2
    assert frechet_distance(a, 2 * a) > frechet_distance(a, 1.2 * a) > 0  # spread matters too
    with pytest.raises(ValueError):
        frechet_distance(a, a[:, :4])


def test_similarity_of_identical_clips_is_one(tone_clips):
    clips = tone_clips(3, 0, True)
    std = Standardiser.fit(window_embeddings(tone_clips(8, 5, False), SR))
    whole, edge = continuation_similarity(clips, clips, SR, std)
    assert np.allclose(whole, 1) and edge.shape == (3,)
    other, _ = continuation_similarity(clips, tone_clips(3, 9, False), SR, std)
    assert (other < 0.99).all()
    assert cosine(np.array([[1.0, 0]]), np.array([[0.0, 2]]))[0] == pytest.approx(0)


def test_token_nll_scores_only_the_new_frames(tiny):
    codes = torch.randint(0, 64, (2, tiny.num_codebooks, 30))
    full = token_nll(tiny, codes)
    tail = token_nll(tiny, codes, start_frame=20)
    assert full.shape == tail.shape == (2,) and np.isfinite(full).all() and (full > 0).all()
    assert not np.allclose(full, tail)
    changed = codes.clone()
    changed[:, :, 25:] = (codes[:, :, 25:] + 1) % 64  # other targets in the scored frames
    assert (token_nll(tiny, changed, start_frame=20) != tail).all()
    assert (token_nll(tiny, codes, start_frame=40) == 0).all()  # nothing left to score


def test_auc():
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1
    assert auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0
    assert auc([0, 1], [0.5, 0.5]) == 0.5 and np.isnan(auc([1, 1], [0.1, 0.2]))


def test_pearson_is_nan_when_a_side_is_constant():
    assert np.isnan(pearson([1, 1, 1], [0, 1, 2]))
    assert pearson([0, 1, 2], [0, 2, 4]) == pytest.approx(1)
