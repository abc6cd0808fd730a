"""SegmentSet: loading (loudness, only the window), fingerprint, track subsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import SR, noise, plain_song, tone, write
from smitin.data import SegmentSet, describe, stem_segments


def test_loudness_equalised_across_classes(tmp_path: Path) -> None:
    plain_song(tmp_path, "s", drums=noise(4.0, amp=0.9))
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    x = ss.load(range(len(ss)))
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1))
    np.testing.assert_allclose(rms, rms[0], rtol=1e-3)
    assert np.abs(x).max() <= 1.0


def test_fingerprint_changes_with_data(tmp_path: Path) -> None:
    plain_song(tmp_path, "s")
    a = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0).fingerprint()
    assert a == stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0).fingerprint()
    assert a != stem_segments(tmp_path, "drums", sample_rate=16000, seconds=1.0).fingerprint()
    write(tmp_path / "s" / "bass.wav", tone(4.0, 60.0, amp=0.25))
    assert a != stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0).fingerprint()


def test_load_reads_only_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain_song(tmp_path, "s", seconds=4.0)
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    calls = []
    real = sf.read

    def spy(path, *a, **k):
        calls.append(k.get("frames"))
        return real(path, *a, **k)

    monkeypatch.setattr(sf, "read", spy)
    ss.load([len(ss) - 1])
    assert calls and all(f == SR for f in calls)


def test_subset_keeps_only_those_tracks(tmp_path: Path) -> None:
    for i in range(3):
        plain_song(tmp_path, f"t{i}")
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    sub = ss.subset(["t0", "t2"])
    assert isinstance(sub, SegmentSet) and set(sub.groups()) == {"t0", "t2"}
    assert len(sub) == len([s for s in ss.segments if s.track in ("t0", "t2")]) == 16
    assert (sub.trait, sub.sample_rate, sub.seconds) == (ss.trait, ss.sample_rate, ss.seconds)
    np.testing.assert_array_equal(sub.load([0]), ss.load([ss.segments.index(sub.segments[0])]))
    assert len(ss) == 24  # the original set is untouched
    assert len(ss.subset([])) == 0 and len(ss.subset(["nope"])) == 0
    assert sub.fingerprint() != ss.fingerprint()


def test_describe_names_counts_and_skips() -> None:
    summary = {
        "trait": "drums",
        "layout": "plain",
        "root": "/x",
        "seconds": 3.0,
        "sample_rate": 8000,
        "segments": {"positive": 5, "negative": 5},
        "tracks_used": 2,
        "tracks_scanned": 3,
        "skipped": [{"path": "/x/s/bass.wav", "reason": "silent: ..."}],
        "skip_reasons": {"silent": 1},
    }
    text = describe(summary)
    assert "5 positive, 5 negative" in text and "2 of 3 scanned" in text
    assert "skipped: 1 (silent 1)" in text and "/x/s/bass.wav" in text
