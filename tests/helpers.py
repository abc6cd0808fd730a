"""Helpers shared by the tests (import them: `from helpers import make_probes`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from smitin.probes import ProbeSet


def make_probes(layout, trait: str = "drums", seed: int = 0, bias: float = 0.0) -> ProbeSet:
    """Random but valid probes for a head layout (accuracies spread in [0.5, 0.9])."""
    g = torch.Generator().manual_seed(seed)
    shape = (layout.layers, layout.heads, layout.head_dim)
    w = torch.randn(shape, generator=g)
    return ProbeSet(
        weight=w,
        bias=torch.full(shape[:2], bias),
        accuracy=0.5 + 0.4 * torch.rand(shape[:2], generator=g),
        direction=w / w.norm(dim=-1, keepdim=True),
        sigma=torch.ones(shape[:2]),
        mean_pos=torch.zeros(shape),
        mean_neg=torch.zeros(shape),
        meta={"trait": trait, "model": "test"},
    )


def write_stems(root: Path, tracks: int = 4, seconds: float = 8.0, sr: int = 8000, seed: int = 0) -> Path:
    """Plain layout root/<track>/{drums,bass,piano}.wav; drums play in the first half of odd tracks only."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    for i in range(tracks):
        d = root / f"song{i}"
        d.mkdir(parents=True)
        hits = np.exp(-20 * ((t * 8) % 1)).astype(np.float32)  # 8 hits per second
        drums = 0.5 * rng.standard_normal(len(t)).astype(np.float32) * hits
        if i % 2 == 0:
            drums[len(t) // 2 :] = 0
        bass = 0.3 * np.sin(2 * np.pi * (55 + 10 * i) * t)
        piano = 0.2 * np.sin(2 * np.pi * (330 + 20 * i) * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
        for name, x in (("drums", drums), ("bass", bass), ("piano", piano)):
            sf.write(d / f"{name}.wav", x.astype(np.float32), sr)
    return root
