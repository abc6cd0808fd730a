"""A run's cached data stages: the clips' stem activity is reused only for the clips it was made for."""

from __future__ import annotations

import numpy as np
import torch

from smitin.tiny.config import TrainConfig
from smitin.tiny.prepare import clip_activities


def test_activity_cache_follows_the_clips(tmp_path, clip) -> None:
    """Cached activity is reused for the same clips and recomputed when the clips change."""
    import soundfile as sf

    sr = 16000
    path = tmp_path / "drums.wav"
    sf.write(path, 0.3 * np.random.default_rng(0).standard_normal(2 * sr).astype(np.float32), sr)
    songs = [{"id": "s", "stem_paths": {"drums": str(path)}}]
    clips = {"train": [clip(torch.zeros(4, 100, dtype=torch.int16))]}
    cfg = TrainConfig()
    first = clip_activities(songs, clips, ["bass", "drums"], cfg, tmp_path / "act", log=lambda *a: None)
    assert first["train"][0].shape == (2, 100) and first["train"][0][1].all()
    stamp = (tmp_path / "act.safetensors").stat().st_mtime_ns
    again = clip_activities(songs, clips, ["bass", "drums"], cfg, tmp_path / "act", log=lambda *a: None)
    assert torch.equal(again["train"][0], first["train"][0])
    assert (tmp_path / "act.safetensors").stat().st_mtime_ns == stamp  # read back, not recomputed
    longer = {"train": [clip(torch.zeros(4, 80, dtype=torch.int16))]}
    other = clip_activities(songs, longer, ["bass", "drums"], cfg, tmp_path / "act", log=lambda *a: None)
    assert other["train"][0].shape == (2, 80)  # other clips: recomputed, not the stale cache
