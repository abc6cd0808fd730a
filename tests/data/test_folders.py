"""Two-folder traits: one segment per clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import SR, noise, tone, write
from smitin.data import DataError, folder_segments


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
