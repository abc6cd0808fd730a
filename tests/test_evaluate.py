"""Evaluation: each metric on inputs with a known answer, and a tiny end-to-end experiment."""

import csv

import numpy as np
import pytest
import torch

from smitin import judges as J
from smitin.evaluate import Config, pick_prompts, run_experiment, split_tracks
from smitin.judges import ClassifierJudge, ProbeDetector

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


def test_frechet_distance_zero_on_itself_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 8))
    assert J.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    d = [J.frechet_distance(a, a + s) for s in (0.5, 1.0, 2.0)]
    assert d == pytest.approx([8 * 0.25, 8 * 1.0, 8 * 4.0], rel=1e-6)  # a pure mean shift: |mu|^2
    assert J.frechet_distance(a, 2 * a) > J.frechet_distance(a, 1.2 * a) > 0  # spread matters too
    with pytest.raises(ValueError):
        J.frechet_distance(a, a[:, :4])


def test_fad_on_audio_embeddings():
    clean, noisy = _tone_clips(6, 0, False), _tone_clips(6, 1, True)
    e_clean, e_other = J.window_embeddings(clean, SR), J.window_embeddings(_tone_clips(6, 2, False), SR)
    assert e_clean.shape == (6, 4, 2 * J.BANDS)
    assert J.fad(e_clean, e_clean) == pytest.approx(0, abs=1e-6)
    assert J.fad(J.window_embeddings(noisy, SR), e_clean) > J.fad(e_other, e_clean)
    # loudness alone does not move the embedding (clips are RMS-normalised)
    assert np.allclose(J.window_embeddings(0.1 * clean, SR), e_clean, atol=1e-3)


def test_similarity_of_identical_clips_is_one():
    clips = _tone_clips(3, 0, True)
    std = J.Standardiser.fit(J.window_embeddings(_tone_clips(8, 5, False), SR))
    whole, edge = J.continuation_similarity(clips, clips, SR, std)
    assert np.allclose(whole, 1) and edge.shape == (3,)
    other, _ = J.continuation_similarity(clips, _tone_clips(3, 9, False), SR, std)
    assert (other < 0.99).all()
    assert J.cosine(np.array([[1.0, 0]]), np.array([[0.0, 2]]))[0] == pytest.approx(0)


def test_classifier_separates_clips_with_and_without_drums():
    x = np.concatenate([_tone_clips(20, 0, True), _tone_clips(20, 1, False)])
    y = np.array([1] * 20 + [0] * 20)
    judge = ClassifierJudge.train("drums", x, y, SR)
    test_x = np.concatenate([_tone_clips(10, 2, True), _tone_clips(10, 3, False)])
    test_y = np.array([1] * 10 + [0] * 10)
    assert judge.score(test_x, test_y, SR) >= 0.9
    # any model rate: the judge resamples to 16 kHz itself
    import soxr

    x8 = np.stack([soxr.resample(a, SR, 8000) for a in test_x]).astype(np.float32)
    assert judge.score(x8, test_y, 8000) >= 0.9
    with pytest.raises(ValueError, match="with and without"):
        ClassifierJudge.train("drums", x[:5], y[:5], SR)


def test_classifier_matches_scikit_learn_and_saves_without_pickle(tmp_path):
    from smitin.judges import clip_features, fit_classifier

    x = np.concatenate([_tone_clips(20, 0, True), _tone_clips(20, 1, False)])
    y = np.array([1] * 20 + [0] * 20)
    judge = ClassifierJudge.train("drums", x, y, SR, key={"a": 1})
    judge.accuracy = {"original": 0.9}
    test_x = np.concatenate([_tone_clips(5, 2, True), _tone_clips(5, 3, False)])
    ref = fit_classifier(clip_features(x, SR), y).predict_proba(clip_features(test_x, SR))[:, 1]
    assert np.allclose(judge.proba(test_x, SR), ref, atol=1e-9)
    path = judge.save(tmp_path / "drums.safetensors")
    back = ClassifierJudge.load(path)
    assert np.array_equal(back.proba(test_x, SR), judge.proba(test_x, SR))
    assert back.info["key"] == {"a": 1} and back.accuracy == {"original": 0.9}


def test_detector_agrees_with_the_probes_on_constructed_activations(tiny, probes_for, monkeypatch):
    probes = probes_for(tiny.layout)
    det = ProbeDetector(tiny, probes, heads=4, warmup=0.0)
    lay = tiny.layout
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 5, lay.layers, lay.heads, lay.head_dim, generator=g)
    monkeypatch.setattr(J, "capture", lambda backbone, codes, last: z[:, :last])
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


def test_token_nll_scores_only_the_new_frames(tiny):
    codes = torch.randint(0, 64, (2, tiny.num_codebooks, 30))
    full = J.token_nll(tiny, codes)
    tail = J.token_nll(tiny, codes, start_frame=20)
    assert full.shape == tail.shape == (2,) and np.isfinite(full).all() and (full > 0).all()
    assert not np.allclose(full, tail)
    changed = codes.clone()
    changed[:, :, 25:] = (codes[:, :, 25:] + 1) % 64  # other targets in the scored frames
    assert (J.token_nll(tiny, changed, start_frame=20) != tail).all()
    assert (J.token_nll(tiny, codes, start_frame=40) == 0).all()  # nothing left to score


def test_auc():
    assert J.auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1
    assert J.auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0
    assert J.auc([0, 1], [0.5, 0.5]) == 0.5 and np.isnan(J.auc([1, 1], [0.1, 0.2]))


def test_pearson_is_nan_when_a_side_is_constant():
    assert np.isnan(J.pearson([1, 1, 1], [0, 1, 2]))
    assert J.pearson([0, 1, 2], [0, 2, 4]) == pytest.approx(1)


def test_split_is_disjoint_and_stable():
    names = [f"song{i}" for i in range(50)]
    a, b = split_tracks(names, 0), split_tracks(reversed(names), 0)
    assert a == b and not (a["probe"] & a["judge"]) and not (a["judge"] & a["eval"])
    assert 15 <= len(a["probe"]) <= 35 and len(a["judge"]) >= 6 and len(a["eval"]) >= 6
    sub = split_tracks(names[:30], 0)  # a track's side does not depend on which others are there
    assert all(sub[k] == a[k] & set(names[:30]) for k in a)
    small = split_tracks(["a", "b", "c", "d"], 0)
    assert all(len(v) >= 1 for v in small.values()) and len(small["probe"]) == 2


def test_optional_judges_say_why_they_were_skipped(tmp_path):
    judge, notes = J.optional_judges(None)
    assert judge is None and any("CLAP judge skipped" in n for n in notes)
    judge, notes = J.optional_judges(tmp_path / "missing")
    assert judge is None and any("cannot load" in n for n in notes)


def test_pick_prompts_spreads_over_tracks():
    class S:
        def __init__(self, track, label):
            self.track, self.label = track, label

    class Segs:
        segments = [S("a", 0), S("a", 0), S("b", 0), S("b", 1)]

    assert pick_prompts(Segs, 0, 3) == [0, 2, 1]
    assert pick_prompts(Segs, 1, 2) == [3, 3]
    assert pick_prompts(Segs, 2, 2) == []


@pytest.fixture
def one_thread():
    """Tiny models on a busy 2-core machine run ~20x faster on one thread (no spin-waiting)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_experiment_end_to_end_on_a_tiny_model(tiny, stems, tmp_path, one_thread):
    cfg = Config(
        out=tmp_path / "exp",
        data=stems,
        traits=["drums"],
        prompts=2,
        seeds=1,
        duration=1.0,
        prompt_seconds=1.0,
        alphas=[2.0, 5.0],
        per_track=3,
        batch=4,
        progress=False,
    )
    res = run_experiment(cfg, backbone=tiny)
    rows = res["rows"]
    # no processor on the tiny model: text rows are skipped and said so
    methods = {(r["task"], r["method"]) for r in rows}
    assert ("continuation", "smitin") in methods and ("removal", "iti") in methods
    assert not any(m in ("text", "smitin+text") for _, m in methods)
    assert "no text processor" in res["markdown"]
    for r in rows:
        assert r["n"] == 2 and 0 <= r["success_probe"] <= 1 and 0 <= r["success_clf"] <= 1
        assert np.isfinite(r["fad"]) and np.isfinite(r["nll"])
        if r["task"] != "text-to-music":
            assert -1 <= r["similarity"] <= 1
    smitin = [r for r in rows if r["method"] == "smitin"]
    assert all(0 <= r["mean_gain"] <= 1 for r in smitin)
    assert {r["alpha"] for r in rows if r["method"] == "iti" and r["task"] == "continuation"} == {2.0, 5.0}
    out = cfg.out
    assert (out / "results.md").read_text().startswith("# smitin experiment")
    assert (out / "plots" / "success_vs_fad.png").exists() and (out / "plots" / "alpha_sweep.png").exists()
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert (out / "probes" / "drums.safetensors").exists()
    # a rerun resumes from the cached rows: same numbers, no generation
    again = run_experiment(cfg, backbone=tiny)
    assert [r["success_clf"] for r in again["rows"]] == [r["success_clf"] for r in rows]
    # another model: the cached rows are dropped, not mixed in
    (out / "rows" / "data_key.json").write_text('{"weights": "other"}')
    marker = out / "rows" / "stale.json"
    marker.write_text("{}")
    run_experiment(cfg, backbone=tiny)
    assert not marker.exists()
