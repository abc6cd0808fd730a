"""Segments from stem collections: layouts, gate, loudness, split groups and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from smitin.data import (
    DataError,
    SegmentSet,
    describe,
    detect_layout,
    folder_segments,
    stem_segments,
)

SR = 8000


def tone(seconds: float, freq: float, amp: float = 0.3, sr: int = SR, seed: int = 0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, amp: float = 0.2, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(round(seconds * sr)))).astype(np.float32)


def write(path: Path, x: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr)
    return path


def plain_song(root: Path, name: str, seconds: float = 4.0, drums: np.ndarray | None = None) -> Path:
    d = root / name
    write(d / "drums.wav", noise(seconds, seed=hash(name) % 100) if drums is None else drums)
    write(d / "bass.wav", tone(seconds, 55.0))
    write(d / "piano.flac", tone(seconds, 440.0, 0.1))
    return d


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


def test_loudness_equalised_across_classes(tmp_path: Path) -> None:
    plain_song(tmp_path, "s", drums=noise(4.0, amp=0.9))
    ss = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0)
    x = ss.load(range(len(ss)))
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1))
    np.testing.assert_allclose(rms, rms[0], rtol=1e-3)
    assert np.abs(x).max() <= 1.0


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


def test_fingerprint_changes_with_data(tmp_path: Path) -> None:
    plain_song(tmp_path, "s")
    a = stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0).fingerprint()
    assert a == stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0).fingerprint()
    assert a != stem_segments(tmp_path, "drums", sample_rate=16000, seconds=1.0).fingerprint()
    write(tmp_path / "s" / "bass.wav", tone(4.0, 60.0, amp=0.25))
    assert a != stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0).fingerprint()


def test_musdb_layout(tmp_path: Path) -> None:
    for split in ("train", "test"):
        d = tmp_path / split / f"Artist - {split}"
        for i, stem in enumerate(("drums", "bass", "other", "vocals")):
            write(d / f"{stem}.wav", noise(2.0, seed=i))
        write(d / "mixture.wav", noise(2.0))
    assert detect_layout(tmp_path) == "musdb"
    ss = stem_segments(tmp_path, "vocals", sample_rate=SR, seconds=1.0)
    assert set(ss.groups()) == {"train/Artist - train", "test/Artist - test"}
    pos = next(s for s in ss.segments if s.label == 1)
    assert sorted(Path(p).stem for p in pos.sources) == ["bass", "drums", "other", "vocals"]
    with pytest.raises(DataError, match=r"drums/bass/vocals/other.*piano"):
        stem_segments(tmp_path, "piano", sample_rate=SR, seconds=1.0)


def test_musdb_stem_mp4_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "Song.stem.mp4").write_bytes(b"\0")
    with pytest.raises(DataError, match="MUSDB18-HQ"):
        stem_segments(tmp_path, "drums", sample_rate=SR)


def test_moisesdb_layout(tmp_path: Path) -> None:
    d = tmp_path / "0a1b-track"
    write(d / "drums" / "u1.wav", noise(2.0))
    write(d / "guitar" / "u2.wav", tone(2.0, 220.0))
    write(d / "guitar" / "u3.wav", tone(2.0, 330.0))
    write(d / "bass" / "u4.wav", tone(2.0, 55.0))
    meta = {"stems": [{"stemName": "guitar", "tracks": [{"id": "u2", "trackType": "electric guitar"}]}]}
    (d / "data.json").write_text(json.dumps(meta))
    assert detect_layout(tmp_path) == "moisesdb"
    ss = stem_segments(tmp_path, "guitar", sample_rate=SR, seconds=1.0)
    neg = next(s for s in ss.segments if s.label == 0)
    assert sorted(Path(p).name for p in neg.sources) == ["u1.wav", "u4.wav"]
    # track types from data.json are matchable via a user stem map
    ss2 = stem_segments(
        tmp_path, "eguitar", sample_rate=SR, seconds=1.0, stem_map={"eguitar": ["electric guitar"]}
    )
    neg2 = next(s for s in ss2.segments if s.label == 0)
    assert "u3.wav" in {Path(p).name for p in neg2.sources}


def test_slakh_layout(tmp_path: Path) -> None:
    d = tmp_path / "Track00001"
    write(d / "stems" / "S00.flac", tone(2.0, 110.0))
    write(d / "stems" / "S01.flac", noise(2.0))
    write(d / "stems" / "S02.flac", tone(2.0, 440.0))
    write(d / "mix.flac", noise(2.0))
    (d / "metadata.yaml").write_text(
        "audio_dir: stems\nstems:\n"
        "  S00: {inst_class: Bass, program_num: 33, is_drum: false, audio_rendered: true}\n"
        "  S01: {inst_class: Drums, program_num: 0, is_drum: true, audio_rendered: true}\n"
        "  S02: {program_num: 26, is_drum: false, audio_rendered: true}\n"
        "  S03: {inst_class: Piano, program_num: 0, is_drum: false, audio_rendered: false}\n"
    )
    assert detect_layout(tmp_path) == "slakh"
    ss = stem_segments(tmp_path, "guitar", sample_rate=SR, seconds=1.0)  # from program 26
    pos = next(s for s in ss.segments if s.label == 1)
    neg = next(s for s in ss.segments if s.label == 0)
    assert sorted(Path(p).name for p in pos.sources) == ["S00.flac", "S01.flac", "S02.flac"]
    assert sorted(Path(p).name for p in neg.sources) == ["S00.flac", "S01.flac"]
    assert not ss.summary["skipped"]  # S03 was never rendered: not an error
    assert stem_segments(tmp_path, "drums", sample_rate=SR, seconds=1.0).summary["tracks_used"] == 1


# ------------------------------------------------------------------ bad input


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


def test_bad_layout_name(tmp_path: Path) -> None:
    plain_song(tmp_path, "s")
    with pytest.raises(DataError, match="unknown layout"):
        stem_segments(tmp_path, "drums", sample_rate=SR, layout="stems")


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


# ------------------------------------------------------------------ two folders


def test_folder_segments(tmp_path: Path) -> None:
    write(tmp_path / "pos" / "a.wav", noise(3.0))
    write(tmp_path / "pos" / "sub" / "b.flac", noise(2.0, seed=3))
    write(tmp_path / "neg" / "c.wav", tone(2.5, 200.0))
    write(tmp_path / "neg" / "short.wav", tone(0.5, 200.0))
    write(tmp_path / "neg" / "silent.wav", np.zeros(2 * SR, dtype=np.float32))
    (tmp_path / "neg" / "broken.wav").write_bytes(b"junk")
    ss = folder_segments(tmp_path / "pos", tmp_path / "neg", sample_rate=SR, seconds=2.0, trait="x")
    assert ss.labels().tolist() == [1, 1, 0]
    assert len(set(ss.groups())) == 3
    assert ss.segments[0].start == 0.5  # the middle of a 3 s clip
    assert ss.summary["skip_reasons"] == {"too short": 1, "silent": 1, "unreadable": 1}
    assert ss.load([0, 2]).shape == (2, 2 * SR)
    with pytest.raises(DataError, match="no audio files"):
        (tmp_path / "none").mkdir()
        folder_segments(tmp_path / "pos", tmp_path / "none", sample_rate=SR)
    with pytest.raises(DataError, match="does not exist"):
        folder_segments(tmp_path / "pos", tmp_path / "missing", sample_rate=SR)
