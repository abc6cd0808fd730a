"""Dataset layouts: detection and the stems each layout's tracks answer to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import SR, noise, plain_song, tone, write
from smitin.data import DataError, detect_layout, stem_segments


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


def test_bad_layout_name(tmp_path: Path) -> None:
    plain_song(tmp_path, "s")
    with pytest.raises(DataError, match="unknown layout"):
        stem_segments(tmp_path, "drums", sample_rate=SR, layout="stems")
