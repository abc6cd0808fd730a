"""Audio files in and out: mono float32 at the rate the model needs, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RMS_TARGET = 0.1  # -20 dBFS: every loaded segment is scaled to this RMS, both classes alike
SILENT_RMS = 1e-6  # below this a clip is treated as silence and left unscaled
PEAK_CEILING = 0.99  # written audio louder than full scale is scaled down to this peak (never clipped)
QUIET_DBFS = -60.0  # a generated clip below this RMS level is reported as (nearly) silent
WRITABLE_SUFFIXES = frozenset(f.lower() for f in sf.available_formats())  # soundfile picks by suffix


class AudioError(ValueError):
    """An audio file is missing, unreadable or unusable; the message names it and the fix."""


FLOAT32_MAX = float(np.finfo(np.float32).max)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """[S] or [S, C] (soundfile's layout) -> [S] float32, channels averaged (in float64: two
    channels near float32's maximum would overflow their sum)."""
    audio = np.asarray(audio)
    if audio.ndim == 2:
        return audio.mean(axis=1, dtype=np.float64).astype(np.float32)
    return np.asarray(audio, dtype=np.float32)


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample; audio beyond full scale is resampled at full scale and scaled back (the filter
    would overflow near float32's maximum), its overshoot clipped to float32's range, never inf."""
    if source_rate == target_rate:
        return np.asarray(audio, dtype=np.float32)
    x = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    scale = peak if peak > 1.0 else 1.0
    out = soxr.resample(x / scale, source_rate, target_rate) * scale
    return np.clip(out, -FLOAT32_MAX, FLOAT32_MAX).astype(np.float32)


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
    check_finite(data, str(path))
    return resample(to_mono(data), rate, sample_rate)


def check_finite(audio: np.ndarray, name: str) -> None:
    """Refuse NaN or infinite samples (a corrupt file): they would silently poison the codec's codes."""
    bad = int(np.size(audio) - np.count_nonzero(np.isfinite(audio)))
    if bad:
        raise AudioError(
            f"{name}: {bad} of {np.size(audio)} samples are NaN or infinite; the audio is corrupt: "
            "re-export it from its source"
        )


def limit_peak(audio: np.ndarray, ceiling: float = PEAK_CEILING) -> tuple[np.ndarray, float]:
    """Scale a clip down as a whole if it peaks above full scale: (audio, gain applied, 1 if none).

    A 16-bit WAV would clip those samples; one gain for the whole clip keeps its sound.
    """
    peak = float(np.max(np.abs(audio))) if np.size(audio) else 0.0
    if peak <= 1.0:
        return np.asarray(audio, dtype=np.float32), 1.0
    gain = ceiling / peak
    return (np.asarray(audio, dtype=np.float32) * gain).astype(np.float32), gain


def level_dbfs(audio: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if np.size(audio) else 0.0
    return 20 * float(np.log10(rms)) if rms > 0 else float("-inf")


def inspect(path: str | Path) -> float:
    """Check an audio prompt before a model is loaded: readable, finite, not silent; its seconds."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: cannot read audio ({err}); convert it to WAV or FLAC") from None
    if data.size == 0:
        raise AudioError(f"{path}: no audio samples (empty file)")
    check_finite(data, str(path))
    if level_dbfs(data) < 20 * np.log10(SILENT_RMS):
        raise AudioError(
            f"{path}: the audio prompt is silent; give music to continue, or use `smitin generate`"
        )
    return len(data) / rate


def write(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write a WAV (or any soundfile format, by suffix) under a temporary name, then rename it."""
    from .files import atomic

    path = Path(path)
    with atomic(path) as tmp:
        sf.write(str(tmp), np.asarray(audio, dtype=np.float32), sample_rate)
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
