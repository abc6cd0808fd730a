"""What is kept of the music: harmony, pulse, tempo and noisiness of a clip, beside presence.

A presence judge says whether the trait was added; these say what is left of the music around
it (issue 22). All at the judges' 16 kHz, per clip, cheap enough for every row of the experiment:

- `chroma_frames` / `chroma`: 12-bin pitch-class profiles from the STFT log magnitude
  (4096-point, 55 Hz - 2.1 kHz, 40 dB range under each frame's peak, each bin to its nearest
  equal-tempered pitch class, averaged per class so that white noise is flat). Hand-written in numpy rather than librosa's `chroma_stft` (which would
  bring numba and llvmlite into the install for 20 lines of arithmetic); no constant-Q transform,
  no tuning estimate: the synthesised music here is in tune.
- `harmonic_continuity`: per frame of the continuation, the correlation of its profile with the
  prompt's average profile, averaged. Measured on rendered songs (16 clips, 3 s prompt, 4 s
  continuation): the song's own continuation 0.42, another song's 0.10, noise alone 0.00; the
  drum stem added 0.36; white noise added at 0.15 / 0.3 / 0.5 / 1x the clip's RMS 0.40 / 0.38 /
  0.37 / 0.32 (pink 0.40 / 0.40 / 0.38 / 0.34): notes still audible under noise keep part of it,
  noise that replaces them keeps nothing.
- `onset_envelope`, `pulse_clarity`, `tempo`: positive spectral flux of the 64-band log-mel frames
  (the CNN judge's front end, 50 frames/s, smoothed over 3 frames); pulse clarity is the highest normalised
  autocorrelation of the envelope at lags of 0.25-1 s (60-240 BPM), as `scripts/diagnose.py`
  measured it (rendered music through the codec ~0.7); tempo is 60 / that lag.
- `flatness`: spectral flatness (geometric over arithmetic mean of the power spectrum, per frame,
  averaged): ~0.56 for white noise, near 0 for tones.
"""

from __future__ import annotations

import numpy as np
import torch

from ..audio import normalise_loudness
from .cnn import log_mel_frames
from .features import JUDGE_RATE, at_judge_rate

CHROMA_FFT = 4096  # 3.9 Hz bins at 16 kHz: a semitone at 55 Hz is 3.3 Hz, at 110 Hz 6.5 Hz
CHROMA_HOP = 1024
CHROMA_RANGE = (55.0, 2100.0)  # A1 to ~C7: where bass lines and chords live
CHROMA_FLOOR_DB = -40.0  # log magnitudes below the frame's peak minus this count as this
FLAT_FFT = 1024
FLAT_HOP = 320
FRAME_RATE = JUDGE_RATE / 320  # the log-mel frames of `onset_envelope`
PULSE_LAGS = (0.25, 1.0)  # seconds: 240 to 60 beats per minute
QUIET = 1e-4  # frames below this RMS (of a unit-RMS clip) are silence: not counted in flatness/chroma

_PITCH_CLASS: dict[int, np.ndarray] = {}


def _stft_power(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """[N, S] -> [N, F, T] power spectrum (Hann window, centred frames)."""
    spec = torch.stft(
        torch.from_numpy(np.ascontiguousarray(x, np.float32)),
        n_fft,
        hop,
        window=torch.hann_window(n_fft),
        return_complex=True,
    )
    return (spec.abs() ** 2).numpy()


def _unit_rms(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return np.stack([normalise_loudness(a) for a in at_judge_rate(audio, sample_rate)])


def _pitch_class_map() -> np.ndarray:
    """[F, 12] 0/1 matrix: the pitch class of each STFT bin inside `CHROMA_RANGE` (0 = C)."""
    if CHROMA_FFT not in _PITCH_CLASS:
        hz = np.fft.rfftfreq(CHROMA_FFT, 1 / JUDGE_RATE)
        ok = (hz >= CHROMA_RANGE[0]) & (hz <= CHROMA_RANGE[1])
        midi = np.round(69 + 12 * np.log2(np.maximum(hz, 1e-6) / 440.0)).astype(int)
        m = np.zeros((len(hz), 12))
        m[ok, midi[ok] % 12] = 1.0
        _PITCH_CLASS[CHROMA_FFT] = m
    return _PITCH_CLASS[CHROMA_FFT]


def chroma_frames(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """[N, S] clips -> ([N, T, 12] pitch-class levels per frame, [N, T] non-silent frames).

    Each pitch class is the mean log magnitude of its bins (floored at `CHROMA_FLOOR_DB` under the
    frame's peak), so white noise gives a flat profile and a noise floor that rises under the
    notes flattens it: on a log scale the notes' contrast shrinks as noise fills the gaps.
    """
    x = _unit_rms(audio, sample_rate)
    mag = np.sqrt(_stft_power(x, CHROMA_FFT, CHROMA_HOP))  # [N, F, T]
    top = mag.max(1, keepdims=True)
    level = np.log10(np.maximum(mag, top * 10 ** (CHROMA_FLOOR_DB / 20) + 1e-12))
    pcm = _pitch_class_map()
    frames = np.einsum("nft,fc->ntc", level, pcm) / pcm.sum(0)
    loud = np.sqrt((mag**2).mean(1)) > QUIET * CHROMA_FFT / 2
    return frames, loud


def _centred(v: np.ndarray) -> np.ndarray:
    """Profiles with their mean removed and unit length (zero where flat)."""
    v = v - v.mean(-1, keepdims=True)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def chroma(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N, 12] pitch-class profile of each clip: its non-silent frames' chroma, averaged."""
    frames, loud = chroma_frames(audio, sample_rate)
    return (frames * loud[..., None]).sum(1) / np.maximum(loud.sum(1), 1)[:, None]


def harmonic_continuity(prompt: np.ndarray, continuation: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N]: mean over the continuation's frames of the correlation of the frame's pitch-class profile
    with its prompt's average profile (1: every moment in the prompt's harmony; ~0: noise, or
    unrelated harmony).

    Per frame, not of the average, so that bursts that cover some moments count; centred, so that
    a flat (noise) profile correlates with nothing.
    """
    key = _centred(chroma(prompt, sample_rate))  # [N, 12]
    frames, loud = chroma_frames(continuation, sample_rate)
    r = (_centred(frames) * key[:, None]).sum(-1)  # [N, T]
    return (r * loud).sum(-1) / np.maximum(loud.sum(-1), 1)


def onset_envelope(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N, T-1]: positive spectral flux of the 64-band log-mel frames (50 per second), smoothed."""
    lm = log_mel_frames(audio, sample_rate)  # [N, 64, T], loudness-normalised
    flux = (lm[..., 1:] - lm[..., :-1]).clamp_min(0).mean(1).numpy().astype(np.float64)
    # a 3-frame smoothing: a beat period that is not a whole number of frames still lines up
    padded = np.pad(flux, ((0, 0), (1, 1)), mode="edge")
    return 0.25 * padded[:, :-2] + 0.5 * padded[:, 1:-1] + 0.25 * padded[:, 2:]


def _autocorrelation(env: np.ndarray) -> np.ndarray:
    """[N, T] -> [N, T] autocorrelation of the mean-removed envelope, 1 at lag 0 (0 if flat)."""
    e = env - env.mean(-1, keepdims=True)
    n = e.shape[-1]
    f = np.fft.rfft(e, 2 * n, axis=-1)
    ac = np.fft.irfft(f * np.conj(f), axis=-1)[..., :n]
    return ac / np.maximum(ac[..., :1], 1e-12)


def rhythm(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """([N] pulse clarity, [N] tempo in BPM): the best autocorrelation peak at 0.25-1 s and 60 / its lag.

    Tempo is NaN where there is no pulse (silence) or the clip is too short for a lag of 0.25 s.
    """
    ac = _autocorrelation(onset_envelope(audio, sample_rate))
    lo, hi = int(round(PULSE_LAGS[0] * FRAME_RATE)), int(round(PULSE_LAGS[1] * FRAME_RATE))
    hi = min(hi, ac.shape[-1] // 2)
    if hi <= lo:
        nan = np.full(len(ac), np.nan)
        return nan, nan
    window = ac[:, lo : hi + 1]
    lag = lo + window.argmax(-1)
    pulse = window.max(-1).clip(0.0, 1.0)
    return pulse, np.where(pulse > 0, 60.0 * FRAME_RATE / lag, np.nan)


def pulse_clarity(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N]: how regular the onsets are (0 = no pulse, 1 = a perfectly periodic one)."""
    return rhythm(audio, sample_rate)[0]


def flatness(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N]: mean spectral flatness over the clip's non-silent frames (0 = tones, ~0.56 = white noise)."""
    power = _stft_power(_unit_rms(audio, sample_rate), FLAT_FFT, FLAT_HOP)[:, 1:]  # no DC bin
    power = power + 1e-12
    per_frame = np.exp(np.log(power).mean(1)) / power.mean(1)  # [N, T]
    loud = power.mean(1) > (QUIET**2) * FLAT_FFT
    return (per_frame * loud).sum(-1) / np.maximum(loud.sum(-1), 1)


def same_tempo(a: np.ndarray, b: np.ndarray, tolerance: float = 0.08) -> np.ndarray:
    """[N] bool: tempi within `tolerance` of each other, or of double / half (the usual octave slips)."""
    ratio = np.abs(np.log2(np.asarray(a, float) / np.asarray(b, float)))
    return np.minimum(ratio, np.abs(ratio - 1)) <= np.log2(1 + tolerance)


def clip_measures(audio: np.ndarray, sample_rate: int, prompt: np.ndarray | None = None) -> list[dict]:
    """Per clip: flatness, pulse clarity, tempo; with prompts also harmonic continuity, the prompt's
    pulse clarity and tempo, and whether the tempo was kept. The fields a row's clips carry."""
    flat = flatness(audio, sample_rate)
    pulse, bpm = rhythm(audio, sample_rate)
    out = [
        {"flatness": float(f), "pulse": float(p), "tempo": float(t)}
        for f, p, t in zip(flat, pulse, bpm, strict=True)
    ]
    if prompt is not None:
        cont = harmonic_continuity(prompt, audio, sample_rate)
        p_pulse, p_bpm = rhythm(prompt, sample_rate)
        kept = same_tempo(bpm, p_bpm)
        for d, c, pp, pt, k in zip(out, cont, p_pulse, p_bpm, kept, strict=True):
            d.update(continuity=float(c), prompt_pulse=float(pp), prompt_tempo=float(pt), tempo_kept=bool(k))
    return out
