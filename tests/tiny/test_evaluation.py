"""The model-card measurements: unigram baselines, codec error and the tables they fill."""

from __future__ import annotations

import math

import numpy as np
import torch

import smitin  # noqa: F401
from smitin.tiny import BUNDLED_DIR
from smitin.tiny.evaluation import codec_metrics, reconstruct, results_markdown, unigram_ce


def test_unigram_ce_is_the_entropy_of_what_it_was_fitted_on() -> None:
    rng = np.random.default_rng(0)
    p = np.array([0.7, 0.2, 0.1])
    codes = [torch.from_numpy(rng.choice(3, size=(2, 20000), p=p))]
    entropy = float(-(p * np.log(p)).sum())
    assert abs(unigram_ce(codes, codes, 3) - entropy) < 0.01
    uniform = [torch.from_numpy(rng.integers(0, 3, size=(2, 20000)))]
    # scoring uniform codes under a skewed unigram costs more than log(3)
    assert unigram_ce(codes, uniform, 3) > math.log(3) + 0.1


def test_codec_metrics_and_reconstruction_on_the_bundled_codec() -> None:
    from transformers import MusicgenForConditionalGeneration

    codec = MusicgenForConditionalGeneration.from_pretrained(BUNDLED_DIR).audio_encoder
    t = np.arange(16000) / 16000
    clips = np.stack([0.3 * np.sin(2 * np.pi * f * t) for f in (220, 440)]).astype(np.float32)
    rec = reconstruct(codec, clips)
    assert rec.shape == clips.shape and np.isfinite(rec).all()
    m = codec_metrics(codec, clips)
    assert all(np.isfinite(v) and v > 0 for v in m.values())
    # clips are loudness-normalised first, so a gain does not change the error
    half = codec_metrics(codec, clips * 0.5)
    assert abs(half["vq_logmel_mae_db"] - m["vq_logmel_mae_db"]) < 1e-3


def test_results_markdown_has_every_table() -> None:
    res = {
        "eval_songs": 2,
        "eval_data": "/x",
        "seed": 0,
        "seconds": 5.0,
        "classifier_data": "/y",
        "codec": {"vq_logmel_mae_db": 3.5, "decoded_logmel_mae_db": 3.7},
        "classifier": {
            "bass": {
                "train_segments": 10,
                "test_segments": 4,
                "acc_orig": 0.8,
                "acc_reconstructed": 0.6,
                "judge_acc_reconstructed": 0.7,
            }
        },
        "lm": {
            "heldout_ce_with_caption": 4.0,
            "heldout_ce_null_caption": 4.1,
            "unigram_ce": 6.9,
            "unigram_oracle_ce": 6.4,
            "uniform_ce": 6.93,
        },
        "text_adherence": {
            "bass": {
                "n": 4,
                "found_when_named": 0.5,
                "found_when_excluded": 0.0,
                "found_with_empty_prompt": 0.25,
            }
        },
        "probes": {"bass": {"best": 0.9, "median": 0.7, "val_segments": 8, "val_tracks": 2}},
    }
    md = results_markdown(res)
    assert "| bass | 10 / 4 | 0.80 | 0.60 | 75% | 0.70 |" in md
    assert "| unigram baseline" in md and "6.900" in md
    assert "| bass | 4 | 0.50 | 0.00 | nan | 0.25 |" in md
    assert "| bass | 0.900 | 0.700 | 8 (2) |" in md
