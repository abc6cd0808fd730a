"""Paired segments from stem collections: pairs, the energy gate, splits and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import SR, noise, plain_song, tone, write
from smitin.data import DataError, SegmentSet, describe, detect_layout, stem_segments


def test_plain_layout_pairs_and_sources(tmp_path: Path) -> None:
    for i in range(3):
        plain_song(tmp_path, f"song{i}")
    write(tmp_path / "song0" / "mix.wav", noise(4.0))  # a mix is never a source
    ss = stem_segments(tmp_path, "drums", sample_rate=16000, seconds=1.0)
    assert detect_layout(tmp_path) == "plain"
    assert isinstance(ss, SegmentSet) and ss.summary["layout"] == "plain"
    # 4 s with 1 s windows -> 4 pairs per song
    assert len(ss) == 3 * 4 * 2
    assert ss.labels().sum() == len(ss) // 2
    for seg in ss.segments:
        names = sorted(Path(s).name for s in seg.sources)
        assert "mix.wav" not in names
        assert names == (["bass.wav", "drums.wav", "piano.flac"] if seg.label else ["bass.wav", "piano.flac"])
        assert Path(seg.sources[0]).is_absolute()
    assert len({s.key for s in ss.segments}) == len(ss)
    x = ss.load([0, 1])
    assert x.shape == (2, 16000) and x.dtype == np.float32
    assert "positive" in describe(ss.summary)


def test_negative_is_mix_without_trait(tmp_path: Path) -> None:
    d = tmp_path / "a"
    write(d / "drums.wav", noise(2.0))
    write(d / "bass.wav", tone(2.0, 100.0))
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    neg = ss.load([i for i, s in enumerate(ss.segments) if s.label == 0][:1])[0]
    ref = tone(1.0, 100.0)
    # equal up to the loudness scale
    scale = np.dot(neg, ref) / np.dot(ref, ref)
    np.testing.assert_allclose(neg, scale * ref, atol=1e-4)


def test_gate_silent_region_gives_no_positive(tmp_path: Path) -> None:
    drums = noise(6.0)
    drums[: 3 * SR] = 0.0  # drums only in the second half
    plain_song(tmp_path, "s", seconds=6.0, drums=drums)
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    starts = sorted({s.start for s in ss.segments if s.label == 1})
    assert starts == [3.0, 4.0, 5.0]


def test_gate_threshold_configurable(tmp_path: Path) -> None:
    plain_song(tmp_path, "s", drums=noise(4.0, amp=0.001))  # about 45 dB below the bass
    with pytest.raises(DataError, match="silent"):
        stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0, gate_db=-55.0)
    assert ss.summary["segments"]["positive"] == 4


def test_gate_is_relative_to_the_mix_level(tmp_path: Path) -> None:
    """A whole track mixed 40 dB quieter gives the same segments: levels differ between collections."""
    plain_song(tmp_path / "loud", "s")
    quiet = tmp_path / "quiet" / "s"
    for p in (tmp_path / "loud" / "s").iterdir():
        x, sr = sf.read(str(p), dtype="float32")
        write(quiet / p.name, x * 0.01, sr)
    a = stem_segments(tmp_path / "loud", "drums", sample_rate=SR, seconds=1.0)
    b = stem_segments(tmp_path / "quiet", "drums", sample_rate=SR, seconds=1.0)
    assert [s.start for s in a.segments] == [s.start for s in b.segments] and len(a) == 8


def test_sparse_hits_count_as_playing(tmp_path: Path) -> None:
    """Drum hits every 250 ms with silence between still make the drums 'present'."""
    hits = np.zeros(4 * SR, dtype=np.float32)
    for k in range(16):
        hits[k * SR // 4 : k * SR // 4 + SR // 50] = noise(0.02, amp=0.8, seed=k)
    plain_song(tmp_path, "s", drums=hits)
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    assert ss.summary["segments"]["positive"] == 4


def test_groups_are_tracks_for_split(tmp_path: Path) -> None:
    for i in range(4):
        plain_song(tmp_path, f"t{i}")
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0, max_segments_per_track=2)
    groups = ss.groups()
    assert sorted(set(groups)) == ["t0", "t1", "t2", "t3"]
    assert all(groups.count(g) == 4 for g in set(groups))  # 2 pairs per track
    assert ss.summary["per_track"]["t0"] == {"positive": 2, "negative": 2}


def test_hop_overlaps(tmp_path: Path) -> None:
    plain_song(tmp_path, "s")
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=2.0, hop=0.5)
    assert sorted({s.start for s in ss.segments}) == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_missing_folder_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        stem_segments(tmp_path / "nope", "drums", sample_rate=SR)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        stem_segments(tmp_path / "empty", "drums", sample_rate=SR)
    (tmp_path / "hollow" / "song").mkdir(parents=True)
    with pytest.raises(DataError, match="no tracks found"):
        stem_segments(tmp_path / "hollow", "drums", sample_rate=SR)


def test_unknown_trait_names_stems_and_fix(tmp_path: Path) -> None:
    plain_song(tmp_path, "s")
    with pytest.raises(DataError, match=r"kazoo.*stems found: bass, drums, piano.*stem_map"):
        stem_segments(tmp_path, "kazoo", sample_rate=SR, seconds=1.0)


def test_corrupt_and_silent_stems_are_skipped(tmp_path: Path) -> None:
    plain_song(tmp_path, "good")
    bad = plain_song(tmp_path, "bad")
    (bad / "bass.wav").write_bytes(b"RIFF not really a wave file")
    write(bad / "organ.wav", np.zeros(4 * SR, dtype=np.float32))
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    reasons = {Path(s["path"]).name: s["reason"] for s in ss.summary["skipped"]}
    assert reasons["bass.wav"].startswith("unreadable") and reasons["organ.wav"].startswith("silent")
    assert ss.summary["skip_reasons"] == {"unreadable": 1, "silent": 1}
    assert all("bass.wav" not in p for s in ss.segments if s.track == "bad" for p in s.sources)
    text = describe(ss.summary)
    assert "bass.wav" in text and "organ.wav" in text


def test_silent_trait_stem_skips_track(tmp_path: Path) -> None:
    plain_song(tmp_path, "good")
    plain_song(tmp_path, "quiet", drums=np.zeros(4 * SR, dtype=np.float32))
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    assert set(ss.groups()) == {"good"}
    assert any(s["path"] == "quiet" for s in ss.summary["skipped"])


def test_only_silent_data_raises_with_summary(tmp_path: Path) -> None:
    plain_song(tmp_path, "quiet", drums=np.zeros(4 * SR, dtype=np.float32))
    with pytest.raises(DataError, match=r"(?s)no segments.*drums.wav: silent"):
        stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)


def test_mismatched_lengths_use_shortest(tmp_path: Path) -> None:
    d = tmp_path / "s"
    write(d / "drums.wav", noise(5.0))
    write(d / "bass.wav", tone(3.0, 55.0))
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    assert max(s.start for s in ss.segments) == 2.0
    assert any("lengths differ" in w for w in ss.summary["warnings"])


def test_wrong_rate_and_stereo_are_resampled_and_mixed(tmp_path: Path) -> None:
    d = tmp_path / "s"
    write(d / "drums.wav", np.stack([noise(2.0, sr=22050), noise(2.0, sr=22050, seed=1)], axis=1), sr=22050)
    write(d / "bass.wav", np.stack([tone(2.0, 100.0), -tone(2.0, 100.0) * 0.5], axis=1))  # stereo
    ss = stem_segments(tmp_path, "drums", sample_rate=16000, seconds=1.0)
    assert ss.summary["files_resampled"] == 2
    x = ss.load(range(len(ss)))
    assert x.shape == (len(ss), 16000) and np.isfinite(x).all()
    neg = x[[i for i, s in enumerate(ss.segments) if s.label == 0][0]]
    spec = np.abs(np.fft.rfft(neg))
    assert abs(np.argmax(spec) * 16000 / len(neg) - 100.0) < 2.0  # mono mix of a 100 Hz stereo tone


def test_clip_shorter_than_segment(tmp_path: Path) -> None:
    plain_song(tmp_path, "long")
    plain_song(tmp_path, "short", seconds=0.5)
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    assert set(ss.groups()) == {"long"}
    assert any(s["reason"].startswith("too short") for s in ss.summary["skipped"])


def test_trait_only_stem_cannot_pair(tmp_path: Path) -> None:
    write(tmp_path / "s" / "drums.wav", noise(2.0))
    with pytest.raises(DataError, match="no segments"):
        stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
