"""The rows of the table: what each `Job` runs, and the list of them per trait."""

import math
from dataclasses import dataclass, field

import numpy as np

from helpers import make_probes
from smitin.architectures import build
from smitin.experiment.config import Config
from smitin.experiment.rows import Job, plan_jobs
from smitin.experiment.split import TraitData


def _job(method, task="continuation", alpha=5.0):
    return Job("drums", task, method, alpha, sweep=False, texts=None, waves=None, count=2)


def test_job_names_its_row_and_its_steering():
    cfg = Config(iti_heads=4, threshold=0.3)
    probes = make_probes(build("tiny", seed=0).layout)
    none = _job("none", alpha=float("nan"))
    assert none.ident() == {"trait": "drums", "task": "continuation", "method": "none", "alpha": None}
    assert not none.steered and none.steers(probes, cfg) == []
    (iti,) = _job("iti").steers(probes, cfg)
    assert iti.heads == 4 and not iti.monitor and iti.alpha == 5.0
    assert iti.direction == "mass_mean" and _job("iti").options(cfg, 0).every == 1
    (smitin,) = _job("smitin", task="removal").steers(probes, cfg)
    assert smitin.heads == 16 and smitin.monitor and smitin.alpha == -5.0 and smitin.threshold == 0.3
    assert smitin.direction == "auto" and _job("smitin").options(cfg, 3).every == 1
    assert _job("no-monitor").steers(probes, cfg)[0].monitor is False
    (paper,) = _job("smitin-paper").steers(probes, cfg)
    assert (paper.heads, paper.direction, paper.monitor) == ("soft", "probe", True)
    assert _job("smitin-paper").options(cfg, 3).every == 5 and _job("smitin-paper").options(cfg, 3).seed == 3
    assert _job("smitin-paper").options(Config(every=2), 0).every == 2  # --every overrides every recipe
    (old,) = _job("smitin").steers(probes, Config(recipe="paper"))
    assert old.heads == "soft"
    assert _job("smitin", alpha=2.0).describe() == "drums continuation smitin a=2"


@dataclass
class _Seg:
    track: str
    label: int
    sources: list = field(default_factory=lambda: ["x/bass.wav", "x/piano.wav"])


class _Prompts:
    segments = [_Seg("a", 0), _Seg("b", 0), _Seg("a", 1), _Seg("b", 1)]

    def load(self, idx):
        return np.zeros((len(idx), 10), np.float32)


def test_plan_jobs_lists_the_table_and_the_sweep(tmp_path):
    cfg = Config(traits=["drums"], prompts=2, alpha=5.0, alphas=[2.0, 5.0])
    data = TraitData(None, None, None, _Prompts())
    notes = []
    jobs = plan_jobs(cfg, "drums", data, tmp_path, has_text=True, notes=notes)
    by = {(j.task, j.method, None if math.isnan(j.alpha) else j.alpha): j for j in jobs}
    assert len(by) == len(jobs) and not notes
    # the sweep: continuation rows of ITI, soft weights and SMITIN at every alpha
    assert {a for t, m, a in by if t == "continuation" and m == "smitin"} == {2.0, 5.0}
    assert by["continuation", "smitin", 2.0].sweep and not by["continuation", "smitin", 5.0].sweep
    assert {a for t, m, a in by if t == "removal" and m == "iti"} == {5.0}
    assert by["continuation", "none", None].texts is None and by["continuation", "none", None].count == 2
    assert by["text-to-music", "none", None].waves is None
    assert by["continuation", "text", None].texts == ["a pop groove with bass, piano and drums"] * 2
    assert by["removal", "smitin+text", 5.0].example_text == "a pop groove with bass and piano, without drums"
    assert by["removal", "iti", 5.0].waves.shape == (2, 10)
    # the pairing: every row of one task has the same prompts, in the same order
    for task, label in (("continuation", 0), ("removal", 1)):
        segs = {tuple(j.segments) for j in jobs if j.task == task}
        assert len(segs) == 1 and all(_Prompts.segments[i].label == label for i in next(iter(segs)))
    # no text processor: text rows are skipped and said so; the others run unconditioned
    notes = []
    jobs = plan_jobs(cfg, "drums", data, tmp_path, has_text=False, notes=notes)
    assert not any(j.method in ("text", "smitin+text") for j in jobs)
    assert any("no text processor" in n for n in notes)
    assert all(j.texts is None for j in jobs if j.task != "text-to-music") and len(jobs) == len(by) - 6


def test_plan_jobs_says_when_prompts_repeat(tmp_path):
    cfg = Config(traits=["drums"], tasks=["continuation"], methods=["none"], prompts=3)
    notes = []
    (job,) = plan_jobs(cfg, "drums", TraitData(None, None, None, _Prompts()), tmp_path, True, notes)
    assert job.segments == [0, 1, 0] and any("only 2 distinct prompt segments" in n for n in notes)


def test_keep_rows_hold_the_other_traits_that_play_in_each_prompt(tmp_path):
    class Prompts(_Prompts):
        segments = [
            _Seg("a", 0, ["a/bass.wav", "a/piano.wav"]),
            _Seg("b", 0, ["b/organ.wav"]),
            _Seg("a", 1, ["a/drums.wav", "a/grand-piano.wav"]),
            _Seg("b", 1, ["b/drums.wav"]),
        ]

    cfg = Config(
        traits=["drums", "bass", "piano"], prompts=2, alphas=[5.0], methods=["smitin", "smitin+keep"]
    )
    jobs = plan_jobs(cfg, "drums", TraitData(None, None, None, Prompts()), tmp_path, True, [])
    keep = {j.task: j for j in jobs if j.method == "smitin+keep"}
    assert set(keep) == {"continuation", "removal"}  # text-to-music has nothing playing to hold
    assert keep["continuation"].held == [["bass", "piano"], []]
    assert keep["removal"].held == [["piano"], []]  # a grand piano is piano; drums is the steered trait
    assert all(j.held is None for j in jobs if j.method == "smitin")
    layout = build("tiny", seed=0).layout
    others = {t: make_probes(layout) for t in ("bass", "piano")}
    per_prompt = keep["removal"].kept_steers(others, cfg)
    (held,) = per_prompt[0]
    assert per_prompt[1] == [] and held.keep and held.alpha == 5.0 and held.monitor
    assert (held.heads, held.direction) == (16, "auto")  # the row's recipe, holding
    assert _job("smitin").kept_steers(others, cfg) is None


def test_the_no_monitor_row_is_not_made_twice_when_it_is_the_iti_row(tmp_path):
    data = TraitData(None, None, None, _Prompts())
    notes = []
    same = Config(traits=["drums"], prompts=2, alphas=[5.0], recipe="iti")  # ITI's pushes, the rows' monitor
    jobs = plan_jobs(same, "drums", data, tmp_path, True, notes)
    assert not any(j.method == "no-monitor" for j in jobs) and any("are the ITI rows" in n for n in notes)
    for cfg in (Config(traits=["drums"], prompts=2, alphas=[5.0]), Config(recipe="iti", iti_heads=8)):
        notes = []
        jobs = plan_jobs(cfg, "drums", data, tmp_path, True, notes)
        assert any(j.method == "no-monitor" for j in jobs) and not any("ITI rows" in n for n in notes)
