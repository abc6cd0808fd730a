"""`--batch-rows`: the rows of a trait and task generated together give the same table's shape."""

import numpy as np
import pytest
import torch

from smitin.experiment import Config, run_experiment
from smitin.experiment.rows import generate_rows
from smitin.experiment.runner import Experiment


def config(tmp_path, stems, **kw) -> Config:
    return Config(out=tmp_path / "exp", data=stems, traits=["drums"], prompts=2, seeds=2, duration=0.6,
                  prompt_seconds=1.0, alphas=[5.0], per_track=3, batch=5, progress=False,
                  tasks=["continuation"], methods=["none", "iti", "smitin"], **kw)  # fmt: skip


@pytest.mark.slow
def test_rows_generated_together_are_clip_for_clip_what_each_makes_alone(tiny, stems, tmp_path):
    torch.set_num_threads(1)
    cfg = config(tmp_path, stems, batch_rows=True)
    res = run_experiment(cfg, backbone=tiny)
    rows = {r["method"]: r for r in res["rows"]}
    assert set(rows) == {"none", "iti", "smitin"} and all(r["n"] == 4 for r in rows.values())
    assert all(np.isfinite(r["fad"]) and np.isfinite(r["nll"]) for r in rows.values())
    assert rows["iti"]["share_applied"] == 1.0 and 0 <= rows["smitin"]["share_applied"] <= 1
    clips = [c for c in res["clips"] if c["method"] == "iti"]
    assert [c["seed"] for c in clips] == [0, 1, 2, 3] and [c["prompt"] for c in clips] == [0, 0, 1, 1]
    # the batch of 5 requests mixes rows; each row equals it generated alone (its own batch)
    exp = Experiment(cfg, tiny)
    exp.prepare_trait("drums")
    jobs = [j for j in exp.jobs("drums") if j.method in ("none", "iti")]
    together = generate_rows(tiny, jobs, [exp.steers(j) for j in jobs], cfg)
    for job, batch in zip(jobs, together, strict=True):
        (alone,) = generate_rows(tiny, [job], [exp.steers(job)], cfg)
        assert torch.equal(alone.codes, batch.codes) and batch.audio.shape == alone.audio.shape


@pytest.mark.slow
def test_a_keep_row_holds_the_other_traits_of_each_prompt(tiny, stems, tmp_path):
    torch.set_num_threads(1)
    cfg = config(tmp_path, stems)
    cfg.traits, cfg.methods = ["drums", "piano"], ["none", "smitin", "smitin+keep"]
    res = run_experiment(cfg, backbone=tiny)
    rows = {r["method"]: r for r in res["rows"] if r["task"] == "continuation"}
    assert rows["smitin+keep"]["n"] == rows["smitin"]["n"] == 4
    exp = Experiment(cfg, tiny)
    exp.prepare_trait("drums")
    exp.prepare_trait("piano")
    (job,) = [j for j in exp.jobs("drums") if j.method == "smitin+keep" and j.task == "continuation"]
    assert job.held == [["piano"], ["piano"]]  # the test stems' piano plays in every prompt
    kept = exp.kept_steers(job)
    assert kept is not None and all(s.keep and s.probes is exp.probes["piano"] for (s,) in kept)
    assert (
        "held" in exp.row_path(job)[0]
        and "held" not in exp.row_path(next(j for j in exp.jobs("drums") if j.method == "smitin"))[0]
    )
