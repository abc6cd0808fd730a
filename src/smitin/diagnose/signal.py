"""What a clip sounds like apart from any instrument: loudness, noisiness, and noise to add.

The diagnosis asks whether steering turns music into noise, so it needs a noisiness reading that
no judge or probe made: spectral flatness (geometric over arithmetic mean of the power spectrum
per frame, averaged over frames: near 0 for tones, 1 for white noise), at the judges' 16 kHz.
"""

from __future__ import annotations

import numpy as np
import torch

from ..experiment.features import at_judge_rate

N_FFT = 1024
HOP = 320
NOISES = ("white", "pink")


def rms_db(audio: np.ndarray) -> np.ndarray:
    """[N, S] -> [N] RMS level in dB (full scale = 0 dB)."""
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    return 20 * np.log10(np.sqrt((x**2).mean(-1)) + 1e-9)


def flatness(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N, S] -> [N] mean spectral flatness over frames with any energy (0 tonal .. 1 white noise)."""
    x = torch.from_numpy(np.ascontiguousarray(at_judge_rate(audio, sample_rate), np.float32))
    spec = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    power = spec.abs().double() ** 2 + 1e-12  # [N, F, T]
    flat = torch.exp(torch.log(power).mean(1)) / power.mean(1)  # [N, T]
    live = power.sum(1) > 1e-6 * power.sum(1).amax(-1, keepdim=True)  # skip silent frames
    return ((flat * live).sum(-1) / live.sum(-1).clamp_min(1)).numpy()


def noise(kind: str, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """[N, S] unit-RMS noise: "white" (flat spectrum) or "pink" (power falling as 1/f)."""
    if kind not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, not {kind!r}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if kind == "pink":
        spec = np.fft.rfft(x, axis=-1)
        f = np.arange(spec.shape[-1], dtype=np.float64)
        f[0] = 1.0
        x = np.fft.irfft(spec / np.sqrt(f), n=shape[-1], axis=-1)
    return (x / np.sqrt((x**2).mean(-1, keepdims=True))).astype(np.float32)


def add_noise(audio: np.ndarray, kind: str, level: float, seed: int = 0) -> np.ndarray:
    """Each clip plus `kind` noise at `level` times the clip's own RMS (0 returns the clips)."""
    x = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    rms = np.sqrt((x**2).mean(-1, keepdims=True))
    return x + level * rms * noise(kind, x.shape, seed)
