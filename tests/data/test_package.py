"""The package face: every name callers use is importable from smitin.data."""

from __future__ import annotations

import smitin.data


def test_public_names() -> None:
    for name in smitin.data.__all__:
        assert getattr(smitin.data, name) is not None, name
    for name in ("stem_segments", "folder_segments", "DataError", "SegmentSet", "Segment", "describe",
                 "detect_layout", "known_traits", "LAYOUTS", "block_energy"):  # fmt: skip
        assert name in smitin.data.__all__
    assert issubclass(smitin.data.DataError, ValueError)
    assert smitin.data.LAYOUTS[0] == "auto"
