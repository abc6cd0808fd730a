"""The second judge: a small CNN on log-mel frames."""

import json

import numpy as np
import pytest

from smitin.experiment.cnn import N_MELS, CNNJudge, log_mel_frames
from smitin.experiment.stats import youden_threshold

SR = 16000


def test_log_mel_frames_shape_and_loudness():
    x = np.random.default_rng(0).standard_normal((2, SR)).astype(np.float32)
    lm = log_mel_frames(x, SR)
    assert lm.shape[:2] == (2, N_MELS) and abs(lm.shape[2] - 50) <= 1
    assert np.allclose(log_mel_frames(0.1 * x, SR), lm, atol=1e-3)  # RMS-normalised


def test_cnn_judge_learns_drums_thresholds_and_saves_without_pickle(tmp_path, tone_clips):
    x = np.concatenate([tone_clips(24, 0, True), tone_clips(24, 1, False)])
    y = np.array([1] * 24 + [0] * 24)
    judge = CNNJudge.train("drums", x, y, SR, epochs=8, key={"a": 1})
    assert judge.info["params"] < 10_000 and judge.info["key"] == {"a": 1}
    test_x = np.concatenate([tone_clips(10, 2, True), tone_clips(10, 3, False)])
    test_y = np.array([1] * 10 + [0] * 10)
    p = judge.proba(test_x, SR)
    assert p.shape == (20,) and p[:10].mean() > p[10:].mean()
    judge.threshold = youden_threshold(test_y, p)
    judge.accuracy = {"auc": 1.0}
    present, _ = judge.present(test_x, SR)
    assert (present == (p >= judge.threshold)).all() and (present == test_y).mean() >= 0.9
    path = judge.save(tmp_path / "drums-cnn.safetensors")
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header (length, then JSON), not a pickle
    back = CNNJudge.load(path)
    assert np.allclose(back.proba(test_x, SR), p, atol=1e-6)
    assert back.threshold == judge.threshold and back.accuracy == {"auc": 1.0}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()["smitin_cnn_judge"])["trait"] == "drums"
    with pytest.raises(ValueError, match="with and without"):
        CNNJudge.train("drums", x[:5], y[:5], SR)


def test_cnn_training_is_seeded_and_leaves_the_global_rng_alone(tone_clips):
    import torch

    x = np.concatenate([tone_clips(6, 0, True), tone_clips(6, 1, False)])
    y = np.array([1] * 6 + [0] * 6)
    torch.manual_seed(123)
    a = CNNJudge.train("drums", x, y, SR, epochs=2, seed=5)
    after = torch.rand(1)
    torch.manual_seed(123)
    b = CNNJudge.train("drums", x, y, SR, epochs=2, seed=5)
    assert torch.equal(after, torch.rand(1))
    assert np.allclose(a.proba(x, SR), b.proba(x, SR))
