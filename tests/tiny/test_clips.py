"""Clips of the tiny model's training: captions that name what plays, and where each stem plays."""

from __future__ import annotations

import random

import numpy as np
import torch

from smitin.tiny.clips import Example, clip_activity, make_caption


def test_captions_name_present_instruments() -> None:
    ex = Example(
        song="s",
        present=["drums", "piano"],
        absent=["bass"],
        words={"drums": "drums", "piano": "electric piano"},
        style="pop",
        tempo=100,
        key="C major",
        caption="",
        codes=torch.zeros(4, 10, dtype=torch.int16),
    )
    rng = random.Random(0)
    for _ in range(20):
        text = make_caption(ex, rng)
        assert "drums" in text and "piano" in text
        assert "bass" not in text or "without bass" in text or "no bass" in text


def test_captions_without_song_details() -> None:
    """caption_details=0: style and instruments only (tempo + key let a model memorise songs)."""
    ex = Example(
        "s",
        ["drums"],
        ["bass"],
        {"drums": "drums"},
        "funk",
        123,
        "D minor",
        "funk at 123 bpm in D minor",
        torch.zeros(4, 10, dtype=torch.int16),
    )
    rng = random.Random(0)
    texts = [make_caption(ex, rng, 0.0) for _ in range(50)]
    assert all("bpm" not in t and "D minor" not in t and "drums" in t for t in texts)
    assert any("bpm" in make_caption(ex, rng) for _ in range(50))  # the default keeps them


def test_clip_activity_follows_the_stems(tmp_path) -> None:
    """The tagging targets say where each stem of the clip plays, on the codec's 50 Hz frames."""
    import soundfile as sf

    sr, n = 16000, 4 * 16000
    rng = np.random.default_rng(0)
    drums = 0.3 * rng.standard_normal(n).astype(np.float32)
    drums[n // 2 :] = 0.0  # drums stop after 2 s
    bass = (0.3 * np.sin(2 * np.pi * 55 * np.arange(n) / sr)).astype(np.float32)
    paths = {}
    for name, x in (("drums", drums), ("bass", bass)):
        paths[name] = str(tmp_path / f"{name}.wav")
        sf.write(paths[name], x, sr)
    meta = {"stem_paths": paths}
    act = clip_activity(
        meta, ["drums", "bass"], ["bass", "drums", "piano"], 200, sample_rate=sr, frame_rate=50, gate_db=-35
    )
    assert act.shape == (3, 200) and act.dtype == torch.bool
    assert act[0].all()  # bass plays throughout
    assert act[1, :75].all() and not act[1, 125:].any()  # drums: first 2 s only (0.5 s smoothing)
    assert not act[2].any()  # piano is not in this clip
    only_bass = clip_activity(
        meta, ["bass"], ["bass", "drums"], 200, sample_rate=sr, frame_rate=50, gate_db=-35
    )
    assert only_bass[0].all() and not only_bass[1].any()  # a submix without drums has no drum targets
