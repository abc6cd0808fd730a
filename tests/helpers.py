"""Helpers shared by the tests (import them: `from helpers import make_probes`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from smitin.probes import ProbeSet, orthogonal_to


def make_probes(layout, trait: str = "drums", seed: int = 0, bias: float = 0.0) -> ProbeSet:
    """Random but valid probes for a head layout (accuracies spread in [0.5, 0.9])."""
    g = torch.Generator().manual_seed(seed)
    shape = (layout.layers, layout.heads, layout.head_dim)
    w = torch.randn(shape, generator=g)
    accuracy = 0.5 + 0.4 * torch.rand(shape[:2], generator=g)
    mean_pos = torch.randn(shape, generator=g)  # drawn last: earlier tensors match older helpers
    unit, sigma = w / w.norm(dim=-1, keepdim=True), torch.ones(shape[:2])
    return ProbeSet(
        weight=w,
        bias=torch.full(shape[:2], bias),
        accuracy=accuracy,
        direction=unit,
        sigma=sigma,
        mean_pos=mean_pos,
        mean_neg=torch.zeros(shape),
        meta={"trait": trait, "model": "test"},
        directions={
            "probe": (unit, sigma),
            "mass_mean": (mean_pos / mean_pos.norm(dim=-1, keepdim=True), sigma),
            "denoised": (_blind(mean_pos, w), sigma),  # blind to a stand-in noise response (the weights)
        },
    )


def _blind(v: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Unit v with its component along unit `noise` removed, per head."""
    d = orthogonal_to(v, noise / noise.norm(dim=-1, keepdim=True))
    return d / d.norm(dim=-1, keepdim=True)


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


# -- short synthetic clips for the data tests ------------------------------------------------------

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
    """root/name/{drums.wav (noise), bass.wav (55 Hz), piano.flac (440 Hz)}."""
    d = root / name
    write(d / "drums.wav", noise(seconds, seed=hash(name) % 100) if drums is None else drums)
    write(d / "bass.wav", tone(seconds, 55.0))
    write(d / "piano.flac", tone(seconds, 440.0, 0.1))
    return d


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run `smitin ARGV` in-process: (exit code, stdout + stderr); argparse's refusals count too."""
    from smitin.cli import main

    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def bounded_examples(n: int):
    """Hypothesis settings of the property tests: `n` examples, the same ones every run (CI stays
    bounded and reproducible), no deadline (shared machines), fixtures allowed."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def any_value():
    """Any value a page field or an API client can send: None, bools, huge integers, every float
    (NaN, infinities), short text, and the bounds' edge cases."""
    from hypothesis import strategies as st

    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(
            [0.5, 1, 3, 5, -5, 100, 100.5, 2**63, 2**63 - 1, "soft", "16", "1000", "paper", "1e308"]
        ),
    )
