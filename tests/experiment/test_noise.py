"""Noise-robust judges: noise for tests and training, and the false-positive check."""

import numpy as np
import pytest

from smitin.experiment.judges import ClassifierJudge
from smitin.experiment.noise import (
    COLOURS,
    LEVELS,
    add_noise,
    augment,
    equivalent_level,
    false_positives,
    judge_noise_report,
    noise,
    worst,
)

SR = 16000


@pytest.mark.parametrize("colour", COLOURS)
def test_noise_is_unit_rms_and_coloured(colour):
    x = noise((4, SR), colour, np.random.default_rng(0))
    assert np.sqrt((x.astype(float) ** 2).mean(-1)) == pytest.approx(1.0, rel=1e-3)
    power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    f = np.fft.rfftfreq(SR, 1 / SR)
    low, high = power[:, (f > 100) & (f < 200)].mean(), power[:, (f > 4000) & (f < 8000)].mean()
    assert (low / high > 10) if colour == "pink" else (0.5 < low / high < 2)
    with pytest.raises(ValueError, match="colour"):
        noise((1, 10), "brown", np.random.default_rng(0))


def test_add_noise_at_the_clips_own_level():
    rng = np.random.default_rng(0)
    clips = np.stack([0.5 * np.ones(SR), 0.01 * np.ones(SR)]).astype(np.float32)
    noisy = add_noise(clips, 0.3, "white", rng)
    added = noisy - clips
    assert np.sqrt((added.astype(float) ** 2).mean(-1)) == pytest.approx([0.15, 0.003], rel=1e-3)


def test_augment_keeps_labels_and_adds_noise_only_negatives(tone_clips):
    x = np.concatenate([tone_clips(8, 0, True), tone_clips(8, 1, False)])
    y = np.array([1] * 8 + [0] * 8)
    ax, ay = augment(x, y, seed=0)
    assert len(ax) == len(ay) == 2 * 16 + 4
    assert (ay[:16] == y).all() and (ay[16:32] == y).all() and (ay[32:] == 0).all()
    assert np.array_equal(ax[:16], x) and not np.allclose(ax[16:32], x)
    again = augment(x, y, seed=0)[0]
    assert np.array_equal(again, ax)


def test_a_clean_judge_takes_noise_for_drums_and_an_augmented_one_does_not(tone_clips):
    """Drums = tones with noise bursts: trained on clean clips, the judge calls tones + steady noise
    drums; trained with noise-augmented clips it needs the bursts."""
    x = np.concatenate([tone_clips(40, 0, True), tone_clips(40, 1, False)])
    y = np.array([1] * 40 + [0] * 40)
    clean = ClassifierJudge.train("drums", x, y, SR)
    robust = ClassifierJudge.train("drums", *augment(x, y, seed=0), SR)
    test_pos, test_neg = tone_clips(20, 2, True), tone_clips(20, 3, False)
    for judge in (clean, robust):  # both still tell drums from no drums on clean clips
        assert judge.present(test_pos, SR)[0].mean() >= 0.9
    fp_clean = false_positives(clean.present, test_neg, SR)
    fp_robust = false_positives(robust.present, test_neg, SR)
    assert set(fp_clean) == {"clean"} | {f"{c} {lv:g}" for c in COLOURS for lv in LEVELS} | {
        f"{c} alone" for c in COLOURS
    }
    assert fp_clean["clean"] <= 0.1 and worst(fp_clean) >= 0.5
    assert worst(fp_robust) <= 0.1
    # and still hears most drum tracks under noise (0.7 measured: 0.3x white noise masks faint bursts)
    assert robust.present(add_noise(test_pos, 0.3, "white", np.random.default_rng(1)), SR)[0].mean() >= 0.6


def test_equivalent_level_reads_a_flatness_off_the_checks_curve():
    curve = {"clean": 0.01, "white 0.05": 0.02, "white 0.15": 0.06, "white 0.3": 0.12, "white 0.5": 0.2}
    assert equivalent_level(0.08, curve) == pytest.approx(0.225)  # flatness 0.01 -> 0.09
    assert equivalent_level(-0.01, curve) == 0.0 and equivalent_level(0.3, curve) == float("inf")
    assert np.isnan(equivalent_level(0.1, {}))


def test_judge_noise_report_lists_every_judge_and_level():
    fp = {"clean": 0.0, "white 0.3": 0.5, "pink alone": 1.0}
    info = {
        "drums": {
            "noise_check": {"A": {"auc_resynthesised": 0.9, "fp": fp}},
            "noise_flatness": {"clean": 0.01},
        }
    }
    table = judge_noise_report(info)
    head, _, row = table.splitlines()[:3]
    assert "FP white 0.3" in head and "FP pink alone" in head
    assert row.startswith("| drums | A | 0.900 |") and "| 50% |" in row and row.endswith("| 100% |")
    assert "clean 0.010" in table
