"""`smitin diagnose` end to end on a tiny model: every analysis, the JSON and the summary."""

import json

import numpy as np
import pytest

from smitin.diagnose.diagnosis import diagnose
from smitin.diagnose.settings import Settings


@pytest.mark.slow
def test_diagnose_end_to_end_on_a_tiny_model(tiny, stems, tmp_path):
    s = Settings(
        out=tmp_path / "diag",
        data=stems,
        prompts=2,
        seeds=1,
        duration=0.6,
        prompt_seconds=1.0,
        pairs=4,
        noise_levels=[0.3],
        variants=[
            "mine:alpha=3,edit=bounded,layers=1",
            "held:alpha=3,keep=1",
            "blind:direction=denoised,blind=1",
        ],
        keep=["piano"],
        per_track=3,
        progress=False,
    )
    res = diagnose(s, command="smitin diagnose --test", only_variants=True, backbone=tiny)
    saved = json.loads((s.out / "diagnosis.json").read_text())
    assert saved["settings"]["trait"] == "drums" and saved["command"] == "smitin diagnose --test"
    d = res["directions"]["directions"]["mass_mean"]
    assert set(d["shift_along_direction"]) == {
        "with",
        "with, loudness matched",
        "without + white noise",
        "without + pink noise",
    }
    assert res["directions"]["flatness"]["without + white noise"] > res["directions"]["flatness"]["without"]
    rows = res["monitor"]["rows"]
    assert {"without", "with", "white noise alone", "without + pink noise x0.3"} <= set(rows)
    assert all(0 <= r["C_mean"] <= 1 and 0 <= r["judge_present"] <= 1 for r in rows.values())
    assert rows["white noise alone"]["flatness"] > rows["without"]["flatness"]
    lever = res["causal"]
    assert lever["contexts"] >= 1 and len(lever["trait_codes_per_codebook"]) == tiny.num_codebooks
    heads = lever["directions"]["mass_mean"]["per_head"]
    assert len(heads) == tiny.layout.layers * tiny.layout.heads and all(e["kl"] >= -1e-6 for e in heads)
    assert len(lever["directions"]["probe"]["per_layer"]) == tiny.layout.layers
    push = res["push"]["rows"]
    assert list(push) == ["mine", "held", "blind"] and push["mine"]["n"] == 2
    assert res["push"]["prompts_with"]["piano"] == 2  # the stems' piano plays in every prompt
    piano = push["held"]["kept"]["piano"]  # watched in every row, held in "held"
    assert set(push["mine"]["kept"]) == {"piano"} and 0 <= piano["present_unsteered"] <= 2
    assert push["held"]["settings"]["keep_others"] and not push["mine"]["settings"]["keep_others"]
    assert (
        push["mine"]["settings"]["layers"] == [1] and push["mine"]["settings"]["steer"]["edit"] == "bounded"
    )
    assert np.isfinite(push["mine"]["flatness"]["diff"]) and 0 <= push["mine"]["applied"] <= 1
    # what is kept of the music, paired like presence: harmony against the prompt, and the pulse
    for key in ("continuity", "pulse"):
        m = push["mine"][key]
        assert np.isfinite(m["diff"]) and m["low"] <= m["diff"] <= m["high"]
        assert -1 <= m["none"] <= 1 and -1 <= m["steered"] <= 1
    assert 0 <= res["push"]["prompt"]["pulse"] <= 1
    assert (s.out / "frontier.png").stat().st_size > 10_000  # presence against keeping, per variant
    assert len(res["sampling"]["unsteered"]) == len(res["sampling"]["rows"])  # each its own pair
    md = (s.out / "summary.md").read_text()
    for title in ("## Directions", "## The monitor", "## Where is the lever", "## Push", "## Sampling"):
        assert title in md
    assert "piano kept" in md and "| harmonic continuity | pulse clarity |" in md
