"""A tiny end-to-end experiment: rows, judges, files, resuming from the cache."""

import csv

import numpy as np
import pytest
import torch

from smitin.experiment import Config, run_experiment


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
    assert (out / "judges" / "drums.safetensors").exists() and (
        out / "judges" / "drums-cnn.safetensors"
    ).exists()
    # the headline: every row but no control against its no-control row, both judges, flagged as small
    md = (out / "results.md").read_text()
    assert md.index("## Headline") < md.index("## continuation") and "below 48 pairs" in md
    entries = res["headline"]
    assert len(entries) == len([r for r in rows if r["method"] != "none"])
    assert all(e["n"] == 2 and "clf" in e and "cnn" in e for e in entries)
    with open(out / "clips.csv") as f:
        clips = list(csv.DictReader(f))
    assert {"prompt", "segment", "seed", "rep", "cnn_prob", "cnn_present"} <= set(clips[0])
    assert {c["prompt"] for c in clips} == {"0", "1"}
    for r in rows:
        assert 0 <= r["success_cnn"] <= 1 and (r["method"] == "none") == (r["pairs"] == 0)
    assert 0 < res["judges"]["drums"]["cnn_threshold"] < 1
    # keeping beside presence: measures per clip, paired entries, the references, the noise check
    assert {"continuity", "pulse", "flatness", "tempo_kept", "clf_clean_prob", "cnn_clean_present"} <= set(
        clips[0]
    )
    kept = res["keeping"]
    methods_kept = {(e["task"], e["method"]) for e in kept}
    assert ("continuation", "smitin") in methods_kept and ("continuation", "stem") in methods_kept
    assert ("removal", "stem") in methods_kept and ("continuation", "none (another seed)") not in methods_kept
    stem = next(e for e in kept if e["method"] == "stem" and e["task"] == "continuation")
    assert stem["n"] == 2 and stem["flatness"] is not None
    assert np.isfinite(stem["continuity"].diff) and stem["presence_cnn"].n == 2
    with open(out / "references.csv") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {"true", "stem"}
    assert "## Keeping" in md and "judge_noise_report" in md and (out / "plots" / "frontier.png").exists()
    noise = res["judges"]["drums"]["noise_check"]
    assert set(noise) == {"A", "B", "A (no noise)", "B (no noise)"}
    assert all(0 <= v["fp"]["white 0.3"] <= 1 for v in noise.values())
    assert (out / "judges" / "drums-clean.safetensors").exists()
    assert "continuity_diff" in [r for r in rows if r["method"] == "smitin"][0]
    # a rerun resumes from the cached rows: same numbers, no generation
    again = run_experiment(cfg, backbone=tiny)
    assert [r["success_clf"] for r in again["rows"]] == [r["success_clf"] for r in rows]
    # another model: the cached rows are dropped, not mixed in
    (out / "rows" / "data_key.json").write_text('{"weights": "other"}')
    marker = out / "rows" / "stale.json"
    marker.write_text("{}")
    run_experiment(cfg, backbone=tiny)
    assert not marker.exists()
