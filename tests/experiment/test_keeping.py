"""The keeping headline on constructed cases: a drum stem added keeps the rest; noise in its place does not."""

import math

import numpy as np
import pytest

from smitin.experiment.config import Config
from smitin.experiment.headline import headline
from smitin.experiment.judges import ClassifierJudge
from smitin.experiment.keep import clip_measures
from smitin.experiment.keeping import (
    FLOOR,
    MODEL,
    STEM,
    TRUE,
    add_keep_columns,
    frontier_points,
    keep_entry,
    keep_table,
    keeping,
    other_fields,
    seed_pairs,
)
from smitin.experiment.noise import augment, noise

SR = 16000


def bursts(n: int, seed: int, seconds: float) -> np.ndarray:
    """A 'drum stem': decaying noise bursts at a steady rate, random per clip."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return np.stack(
        [0.3 * rng.standard_normal(len(t)) * np.exp(-30 * ((t * rng.uniform(3, 6)) % 1)) for _ in range(n)]
    ).astype(np.float32)


def clip(trait, method, prompt, rep=0, **fields):
    return {"trait": trait, "task": "continuation", "method": method, "alpha": None, "prompt": prompt,
            "segment": prompt, "seed": 0, "rep": rep, **fields}  # fmt: skip


def test_keep_entry_counts_retention_where_the_base_has_the_instrument():
    base = [clip("drums", "none", i, other_bass_cnn_present=i < 4, other_bass_cnn_prob=0.9 if i < 4 else 0.1,
                 flatness=0.01) for i in range(6)]  # fmt: skip
    row = [clip("drums", "smitin", i, other_bass_cnn_present=i < 2, other_bass_cnn_prob=0.8 if i < 2 else 0.2,
                flatness=0.11) for i in range(6)]  # fmt: skip
    e = keep_entry(list(zip(base, row, strict=True)), judges=("cnn",))
    r = e["others"]["bass"]["cnn"]
    assert (r.n, r.kept, r.base_rate) == (4, 0.5, pytest.approx(4 / 6))
    assert r.score == pytest.approx((2 * -0.1 + 2 * -0.7) / 4) and r.score_low <= r.score <= r.score_high
    assert e["flatness"].diff == pytest.approx(0.1) and e["flatness"].value == pytest.approx(0.11)
    assert e["continuity"] is None  # no prompt, no continuity


def test_seed_pairs_pair_the_two_samples_of_each_prompt():
    base = [clip("drums", "none", p, rep=r) for p in range(3) for r in range(2)] + [clip("drums", "none", 9)]
    pairs = seed_pairs(base)
    assert len(pairs) == 3 and all(
        a["prompt"] == b["prompt"] and (a["rep"], b["rep"]) == (0, 1) for a, b in pairs
    )


@pytest.fixture(scope="module")
def judges():
    """Noise-robust judges of 'drums' (bursts) and 'keys' (tones), trained on constructed clips."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import _tone_clips

    tones, with_drums = _tone_clips(30, 0, False, 3.0), _tone_clips(30, 1, True, 3.0)
    drums = ClassifierJudge.train(
        "drums", *augment(np.concatenate([with_drums, tones]), np.array([1] * 30 + [0] * 30)), SR
    )
    alone = np.concatenate([bursts(15, 2, 3.0), noise((15, 3 * SR), "pink", np.random.default_rng(3)) * 0.1])
    keys = ClassifierJudge.train(
        "keys", *augment(np.concatenate([tones, with_drums, alone]), np.array([1] * 60 + [0] * 30)), SR
    )
    return drums, keys


def _clips(method, audio, prompts, judges):
    drums, keys = judges
    present, prob = drums.present(audio, SR)
    extra = other_fields({"keys": {"cnn": keys}}, audio, SR)
    measures = clip_measures(audio, SR, prompts)
    return [
        clip(
            "drums",
            method,
            i,
            cnn_prob=float(prob[i]),
            cnn_present=bool(present[i]),
            **extra[i],
            **measures[i],
        )
        for i in range(len(audio))
    ]


def test_a_drum_stem_added_gains_drums_and_keeps_the_rest_noise_in_its_place_does_not(judges):
    """The issue's constructed case: adding the stem is the ceiling; noise over the music is what
    steering must not do."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import _tone_clips

    music = _tone_clips(12, 5, False, 5.0)  # one chord per clip: 2 s prompt, 3 s to continue
    prompts, cont = music[:, : 2 * SR], music[:, 2 * SR :]
    rms = np.sqrt((cont**2).mean(-1, keepdims=True))
    drum = bursts(12, 6, 3.0)
    stem = cont + 0.4 * rms * drum / np.sqrt((drum**2).mean(-1, keepdims=True))  # the stem, 8 dB under
    covered = 0.3 * cont + rms * noise(cont.shape, "white", np.random.default_rng(7))
    clips = (
        _clips("none", cont, prompts, judges)
        + _clips("smitin", covered, prompts, judges)
        + [dict(c, method=TRUE) for c in _clips("x", cont, prompts, judges)]
        + [dict(c, method=STEM) for c in _clips("x", stem, prompts, judges)]
    )
    refs = [c for c in clips if c["method"] in (TRUE, STEM)]
    rows = [{"trait": "drums", "task": "continuation", "method": m, "alpha": None, "sweep": False}
            for m in ("none", "smitin")]  # fmt: skip
    entries = keeping(rows, [c for c in clips if c not in refs], refs)
    by = {e["method"]: e for e in entries}
    assert set(by) == {STEM, MODEL, "smitin"}  # no floor: one sample per prompt
    same = by[MODEL]  # here no control is the song's own continuation: nothing lost
    assert same["others"]["keys"]["cnn"].kept == 1.0 and same["continuity"].diff == 0.0
    added, noisy = by[STEM], by["smitin"]
    assert added["presence_cnn"].diff >= 0.8  # the stem adds drums ...
    keys_added, keys_noisy = added["others"]["keys"]["cnn"], noisy["others"]["keys"]["cnn"]
    assert keys_added.n >= 10 and keys_added.kept >= 0.9  # ... and keeps the keys
    # drum hits blur a few frames' pitch classes (the ceiling row says how much); noise blurs them all
    assert added["continuity"].value > 0.7 and added["flatness"].diff < 0.1
    assert keys_noisy.kept <= 0.5 and keys_noisy.score < -0.3  # noise in its place loses them
    assert noisy["continuity"].high < added["continuity"].low - 0.2
    assert noisy["flatness"].low > 0.1 > added["flatness"].diff
    # the CSV columns, the table and the frontier read the same entries
    presence = headline([*rows], [c for c in clips if c not in refs])
    add_keep_columns(rows, entries, judges=("cnn",))
    assert rows[1]["keep_keys_cnn"] == keys_noisy.kept and rows[1]["flatness_diff"] == noisy["flatness"].diff
    cfg = Config(traits=["drums"], tasks=["continuation"], methods=["none", "smitin"])
    table = keep_table(cfg, entries, presence)
    assert (
        "rendered stem added (ceiling)" in table and "keys" in table and table.count("\n") == 4
    )  # header, rule, stem, model, smitin
    points = {p["method"]: p for p in frontier_points(entries, presence)}
    assert points[STEM]["retention"] >= 0.9 and points["smitin"]["retention"] <= 0.5
    assert not math.isnan(points["smitin"]["presence"]) and FLOOR not in points


def test_plot_frontier_draws_every_point(tmp_path):
    from smitin.experiment.plots import plot_frontier

    points = [
        {"trait": t, "method": m, "alpha": a, "presence": 10.0 * i, "retention": 0.9 - 0.1 * i,
         "continuity": -0.05 * i, "flatness": 0.02 * i}
        for i, (t, m, a) in enumerate([("drums", STEM, None), ("drums", "smitin", 2.0), ("drums", "smitin", 5.0),
                                        ("bass", "iti", 5.0)])
    ]  # fmt: skip
    path = plot_frontier(points, tmp_path / "frontier.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg

    assert mpimg.imread(path).shape[1] > 1000  # three panels side by side
