"""The automation part: lanes of the measurement, per-window scoring, and a tiny end-to-end run."""

import csv
import json

import numpy as np
import pytest

from smitin.experiment import Config, run_experiment
from smitin.experiment.automation import followed, lane_for
from smitin.experiment.config import PARTS, TASKS


def test_the_two_lanes_split_the_clip_in_halves():
    assert str(lane_for("absent-present", 4.0)) == "0-2:remove,2-4:add"
    assert str(lane_for("present-absent", 3.0)) == "0-1.5:add,1.5-3:remove"
    assert "automation" in PARTS and "automation" not in TASKS  # opt-in: the default table is unchanged


def test_followed_scores_each_half_against_its_wish():
    row = {
        "probe_present": [[False, False, True, True], [True, False, True, False]],
        "prompt": [0, 1],
    }
    got = followed(row, "absent-present", "probe")
    assert got["first"][0] == pytest.approx(0.75) and got["second"][0] == pytest.approx(0.75)
    assert got["both"][0] == pytest.approx(0.75)
    flip = followed(row, "present-absent", "probe")
    assert flip["first"][0] == pytest.approx(0.25) and flip["second"][0] == pytest.approx(0.25)
    lo, hi = got["first"][1:]
    assert 0.5 <= lo <= 0.75 <= hi <= 1.0  # bootstrap over the two prompts


@pytest.mark.slow
def test_automation_part_end_to_end_on_a_tiny_model(tiny, stems, tmp_path):
    cfg = Config(
        out=tmp_path / "exp",
        data=stems,
        traits=["drums"],
        tasks=["automation"],
        prompts=2,
        seeds=1,
        duration=2.0,
        prompt_seconds=1.0,
        per_track=3,
        batch=4,
        progress=False,
    )
    res = run_experiment(cfg, backbone=tiny)
    auto = res["automation"]
    assert [(r["method"], r["shape"]) for r in auto] == [
        ("none", None),
        ("smitin", None),
        ("lane-smitin", "absent-present"),
        ("lane-smitin", "present-absent"),
        ("lane-iti", "absent-present"),
        ("lane-iti", "present-absent"),
    ]
    assert res["rows"] == [] and auto[2]["lane"] == "0-1:remove,1-2:add"
    for r in auto:
        assert r["n"] == 2 and r["windows"] == 2 and np.array(r["cnn_present"]).shape == (2, 2)
        assert np.isfinite(r["fad"]) and -1 <= r["similarity"] <= 1
    md = (cfg.out / "results.md").read_text()
    assert "## Automation" in md and "absent then present" in md and "## Headline" not in md
    with open(cfg.out / "automation.csv") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 2 * 4 and {"cnn_first", "cnn_second_low", "probe_both_high"} <= set(lines[0])
    assert (cfg.out / "judges" / "drums-windows.json").exists()
    again = run_experiment(cfg, backbone=tiny)  # resumes from the cache
    assert json.dumps(again["automation"]) == json.dumps(auto)
