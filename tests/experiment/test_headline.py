"""The headline: pairing clips with their no-control partners, paired statistics, headroom."""

import numpy as np
import pytest

from smitin.experiment.config import Config
from smitin.experiment.headline import (
    add_paired_columns,
    average_table,
    headline,
    headline_notes,
    headline_table,
    headroom,
    pair_clips,
    validity,
)
from smitin.experiment.rows import clip_plan


def test_clip_plan_pairs_clips_by_prompt_and_seed():
    prompt, seed = clip_plan(count=5, reps=2, batch=4, seed=10)
    assert prompt.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert seed.tolist() == [10, 10, 10, 10, 11, 11, 11, 11, 12, 12]


def _clips(trait, task, method, alpha, present, prob, prompts=None):
    n = len(present)
    prompts = prompts if prompts is not None else [i // 2 for i in range(n)]
    return [
        {
            "trait": trait,
            "task": task,
            "method": method,
            "alpha": alpha,
            "clip": i,
            "prompt": prompts[i],
            "segment": 100 + prompts[i],
            "seed": i // 4,
            "rep": i % 2,
            "clf_present": bool(present[i]),
            "clf_prob": float(prob[i]),
            "cnn_present": bool(present[i]),
            "cnn_prob": float(prob[i]),
        }
        for i in range(n)
    ]


def _row(trait, task, method, alpha, sweep=False):
    return {"trait": trait, "task": task, "method": method, "alpha": alpha, "sweep": sweep}


def test_pair_clips_matches_by_name_not_position():
    base = _clips("drums", "continuation", "none", None, [0] * 4, [0.1] * 4)
    steered = _clips("drums", "continuation", "iti", 5.0, [1] * 4, [0.9] * 4)
    pairs = pair_clips(base, list(reversed(steered)))
    assert all((b["prompt"], b["rep"]) == (s["prompt"], s["rep"]) for b, s in pairs) and len(pairs) == 4
    assert len(pair_clips(base, steered[:3])) == 3
    with pytest.raises(ValueError, match="distinct"):
        pair_clips(base + base[:1], steered)


def test_headline_paired_difference_base_rate_and_headroom():
    n = 48
    none = _clips("drums", "continuation", "none", None, [0] * 40 + [1] * 8, [0.2] * n)
    iti = _clips("drums", "continuation", "iti", 5.0, [1] * 40 + [1] * 8, [0.8] * n)
    # removal: no control already lacks the trait in 80% of clips -> no headroom
    rnone = _clips("drums", "removal", "none", None, [0] * 40 + [1] * 8, [0.2] * n)
    rsm = _clips("drums", "removal", "smitin", 5.0, [0] * n, [0.1] * n)
    rows = [
        _row("drums", "continuation", "none", None),
        _row("drums", "continuation", "iti", 5.0),
        _row("drums", "removal", "none", None),
        _row("drums", "removal", "smitin", 5.0),
    ]
    entries = headline(rows, none + iti + rnone + rsm)
    assert len(entries) == 2
    cont, rem = entries
    assert cont["n"] == n and cont["clf"].base == pytest.approx(8 / 48) and cont["clf"].rate == 1.0
    assert cont["clf"].diff == pytest.approx(40 / 48) and cont["clf"].low > 0.5
    assert cont["clf"].p == pytest.approx(2 * 0.5**48) and cont["clf_headroom"]
    assert rem["clf"].base == pytest.approx(40 / 48) and not rem["clf_headroom"]
    assert rem["clf"].rate == 1.0  # removal: success is absence
    assert (cont["clf"].toward, cont["clf"].away) == (48, 0)
    assert (rem["clf"].toward, rem["clf"].away) == (48, 0)  # removal: scores went down, toward success
    cfg = Config(traits=["drums"], tasks=["continuation", "removal"], methods=["none", "iti", "smitin"])
    table = headline_table(cfg, entries)
    assert (
        "no headroom" in table.splitlines()[-1]
        and table.splitlines()[2].endswith("| 48 | ok |")
        and "(48:0)" in table
    )
    avg = average_table(cfg, entries)
    removal_line = next(line for line in avg.splitlines() if line.startswith("| removal"))
    assert removal_line.endswith("| - | - | 0 |")  # the flagged trait is not averaged in
    assert headline_notes(cfg, entries) == []
    add_paired_columns(rows, entries)
    assert (
        rows[1]["pairs"] == 48
        and rows[1]["clf_diff"] == pytest.approx(40 / 48)
        and rows[1]["cnn_toward"] == 48
    )
    assert rows[0]["pairs"] == 0 and np.isnan(rows[0]["clf_diff"]) and rows[3]["clf_headroom"] is False


def test_headroom_threshold_and_small_rows_are_flagged():
    assert headroom(0.7) and not headroom(0.71)
    none = _clips("bass", "text-to-music", "none", None, [0] * 6, [0.2] * 6)
    text = _clips("bass", "text-to-music", "text", None, [1] * 6, [0.6] * 6)
    rows = [_row("bass", "text-to-music", "none", None), _row("bass", "text-to-music", "text", None)]
    entries = headline(rows, none + text)
    cfg = Config(quick=True)
    assert (
        "below 48 pairs" in headline_notes(cfg, entries)[0] and "--quick" in headline_notes(cfg, entries)[0]
    )
    v = validity(entries)
    assert v["bass"]["clf"].diff == 1.0 and v["bass"]["cnn"].diff == 1.0


def _deaf_cnn(clips):
    """Judge B never hears the trait (as B did for piano on generated audio)."""
    return [{**c, "cnn_present": False, "cnn_prob": 0.1} for c in clips]


def test_a_judge_that_does_not_follow_the_text_is_flagged_and_not_averaged():
    n = 48
    clips = _deaf_cnn(
        _clips("piano", "text-to-music", "none", None, [0] * n, [0.2] * n)
        + _clips("piano", "text-to-music", "text", None, [1] * 40 + [0] * 8, [0.8] * n)
        + _clips("piano", "continuation", "none", None, [0] * n, [0.2] * n)
        + _clips("piano", "continuation", "smitin", 5.0, [1] * 30 + [0] * 18, [0.7] * n)
    )
    rows = [
        _row("piano", "text-to-music", "none", None),
        _row("piano", "text-to-music", "text", None),
        _row("piano", "continuation", "none", None),
        _row("piano", "continuation", "smitin", 5.0),
    ]
    entries = headline(rows, clips)
    smitin = next(e for e in entries if e["method"] == "smitin")
    assert smitin["clf_valid"] is True and smitin["cnn_valid"] is False
    assert smitin["cnn_headroom"]  # B's base rate (0%) leaves room: only validity tells it apart
    cfg = Config(traits=["piano"], tasks=["continuation"], methods=["none", "smitin"])
    assert (
        headline_table(cfg, entries).splitlines()[-1].endswith("| judge not valid on generated audio (B) |")
    )
    line = next(x for x in average_table(cfg, entries).splitlines() if x.startswith("| continuation"))
    assert line.startswith("| continuation | SMITIN | 62% | +62 | 1 |") and line.endswith("| - | - | 0 |")
    add_paired_columns(rows, entries)
    assert rows[3]["cnn_valid"] is False and rows[3]["clf_valid"] is True


def test_without_a_text_row_validity_is_unknown_and_the_judge_counts():
    n = 48
    clips = _deaf_cnn(
        _clips("piano", "continuation", "none", None, [0] * n, [0.2] * n)
        + _clips("piano", "continuation", "smitin", 5.0, [1] * n, [0.7] * n)
    )
    rows = [_row("piano", "continuation", "none", None), _row("piano", "continuation", "smitin", 5.0)]
    (e,) = headline(rows, clips)
    assert e["cnn_valid"] is None and e["clf_valid"] is None
    cfg = Config(traits=["piano"], tasks=["continuation"], methods=["none", "smitin"])
    assert average_table(cfg, headline(rows, clips)).splitlines()[-1].endswith("| 0% | +0 | 1 |")
