"""The judges: the classifier and the probe detector on inputs with a known answer."""

import numpy as np
import pytest
import torch

from smitin.experiment import judges
from smitin.experiment.features import clip_features
from smitin.experiment.judges import ClassifierJudge, ProbeDetector, fit_classifier, optional_judges

SR = 16000


def test_classifier_separates_clips_with_and_without_drums(tone_clips):
    x = np.concatenate([tone_clips(20, 0, True), tone_clips(20, 1, False)])
    y = np.array([1] * 20 + [0] * 20)
    judge = ClassifierJudge.train("drums", x, y, SR)
    test_x = np.concatenate([tone_clips(10, 2, True), tone_clips(10, 3, False)])
    test_y = np.array([1] * 10 + [0] * 10)
    assert judge.score(test_x, test_y, SR) >= 0.9
    # any model rate: the judge resamples to 16 kHz itself
    import soxr

    x8 = np.stack([soxr.resample(a, SR, 8000) for a in test_x]).astype(np.float32)
    assert judge.score(x8, test_y, 8000) >= 0.9
    with pytest.raises(ValueError, match="with and without"):
        ClassifierJudge.train("drums", x[:5], y[:5], SR)


def test_classifier_matches_scikit_learn_and_saves_without_pickle(tmp_path, tone_clips):
    x = np.concatenate([tone_clips(20, 0, True), tone_clips(20, 1, False)])
    y = np.array([1] * 20 + [0] * 20)
    judge = ClassifierJudge.train("drums", x, y, SR, key={"a": 1})
    judge.accuracy = {"original": 0.9}
    judge.threshold = 0.7
    test_x = np.concatenate([tone_clips(5, 2, True), tone_clips(5, 3, False)])
    ref = fit_classifier(clip_features(x, SR), y).predict_proba(clip_features(test_x, SR))[:, 1]
    assert np.allclose(judge.proba(test_x, SR), ref, atol=1e-9)
    path = judge.save(tmp_path / "drums.safetensors")
    back = ClassifierJudge.load(path)
    assert np.array_equal(back.proba(test_x, SR), judge.proba(test_x, SR))
    assert back.info["key"] == {"a": 1} and back.accuracy == {"original": 0.9} and back.threshold == 0.7
    p = judge.proba(test_x, SR)
    assert (back.present(test_x, SR)[0] == (p >= 0.7)).all()  # decides at its calibrated threshold


def test_detector_agrees_with_the_probes_on_constructed_activations(tiny, probes_for, monkeypatch):
    probes = probes_for(tiny.layout)
    det = ProbeDetector(tiny, probes, heads=4, warmup=0.0)
    lay = tiny.layout
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 5, lay.layers, lay.heads, lay.head_dim, generator=g)
    monkeypatch.setattr(judges, "capture", lambda backbone, codes, last: z[:, :last])
    # by hand: probe probabilities, the 4 best heads, median per position, mean over positions
    p = torch.sigmoid(torch.einsum("bplhd,lhd->bplh", z, probes.weight) + probes.bias).flatten(2)
    want = p[..., probes.top(4)].median(-1).values.mean(-1).numpy()
    audio = np.zeros((3, int(0.1 * tiny.sample_rate)), np.float32)  # 5 frames at 50 Hz
    got = det.scores(audio, tiny.sample_rate)
    assert np.allclose(got, want, atol=1e-5)
    present, _ = det.present(audio, tiny.sample_rate)
    assert (present == (want >= probes.threshold())).all()


def test_detector_reads_real_passes(tiny, probes_for):
    det = ProbeDetector(tiny, probes_for(tiny.layout))
    rng = np.random.default_rng(0)
    s = det.scores(0.1 * rng.standard_normal((2, tiny.sample_rate)).astype(np.float32), tiny.sample_rate)
    assert s.shape == (2,) and ((s >= 0) & (s <= 1)).all()


def test_optional_judges_say_why_they_were_skipped(tmp_path):
    judge, notes = optional_judges(None)
    assert judge is None and any("CLAP judge skipped" in n for n in notes)
    judge, notes = optional_judges(tmp_path / "missing")
    assert judge is None and any("cannot load" in n for n in notes)
