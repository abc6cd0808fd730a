"""Audio files in and out: mono float32 at the rate the model needs, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RMS_TARGET = 0.1  # -20 dBFS: every loaded segment is scaled to this RMS, both classes alike
SILENT_RMS = 1e-6  # below this a clip is treated as silence and left unscaled


class AudioError(ValueError):
    """An audio file is missing, unreadable or unusable; the message names it and the fix."""


def to_mono(audio: np.ndarray) -> np.ndarray:
    """[S] or [S, C] (soundfile's layout) -> [S] float32, channels averaged."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return np.asarray(audio, dtype=np.float32)
    return soxr.resample(audio, source_rate, target_rate).astype(np.float32)


def read(
    path: str | Path, sample_rate: int, *, start: float = 0.0, seconds: float | None = None
) -> np.ndarray:
    """Read (a part of) a file as mono float32 at `sample_rate`."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        info = sf.info(str(path))
        first = int(round(start * info.samplerate))
        frames = -1 if seconds is None else int(round(seconds * info.samplerate))
        data, rate = sf.read(str(path), start=first, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: cannot read audio ({err}); convert it to WAV or FLAC") from None
    if data.size == 0:
        raise AudioError(f"{path}: no audio samples (empty file or start past its end)")
    return resample(to_mono(data), rate, sample_rate)


def write(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(audio, dtype=np.float32), sample_rate)
    return path


def normalise_loudness(x: np.ndarray, target_rms: float = RMS_TARGET) -> np.ndarray:
    """Scale to a fixed RMS (then down if it would clip) so level carries no label information."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms < SILENT_RMS:
        return x.astype(np.float32, copy=False)
    y = x * (target_rms / rms)
    peak = float(np.max(np.abs(y)))
    if peak > 0.999:
        y = y * (0.999 / peak)
    return y.astype(np.float32, copy=False)
