"""The keep measures on constructed clips: harmony, pulse, tempo and noisiness."""

import numpy as np
import pytest

from smitin.experiment.keep import (
    chroma,
    clip_measures,
    flatness,
    harmonic_continuity,
    rhythm,
    same_tempo,
)
from smitin.experiment.noise import add_noise, noise

SR = 16000


def chord(seconds: float, roots=(261.63, 329.63, 392.0), seed: int = 0) -> np.ndarray:
    """A sustained chord of harmonic tones (a few partials each), re-struck every half second."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = 0.4 + 0.6 * np.exp(-4 * (t % 0.5))
    x = sum(np.sin(2 * np.pi * f * k * t + rng.uniform(0, 6)) / k**1.5 for f in roots for k in (1, 2, 3))
    return (0.1 * env * x).astype(np.float32)


def clicks(seconds: float, bpm: float) -> np.ndarray:
    """A click track: a 5 ms decaying noise burst on every beat."""
    rng = np.random.default_rng(1)
    x = np.zeros(int(seconds * SR), np.float32)
    n = int(0.005 * SR)
    for start in np.arange(0, seconds, 60 / bpm):
        i = int(start * SR)
        seg = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 4))
        x[i : i + n] += seg[: len(x) - i]
    return x


def test_chroma_finds_the_chord():
    profile = chroma(chord(2.0)[None], SR)[0]
    top = set(np.argsort(profile)[-3:].tolist())
    assert top == {0, 4, 7}  # C, E, G


def test_noise_loses_harmonic_continuity_and_gains_flatness():
    prompt = np.stack([chord(3.0, seed=i) for i in range(4)])
    cont = np.stack([chord(4.0, seed=10 + i) for i in range(4)])
    rng = np.random.default_rng(0)
    noisy = add_noise(cont, 1.0, "white", rng)
    alone = noise(cont.shape, "white", rng)
    other = np.stack([chord(4.0, roots=(277.18, 349.23, 415.3), seed=i) for i in range(4)])  # C# major
    kept = harmonic_continuity(prompt, cont, SR)
    assert (kept > 0.6).all()
    assert (harmonic_continuity(prompt, noisy, SR) < kept - 0.05).all()
    assert (np.abs(harmonic_continuity(prompt, alone, SR)) < 0.2).all()
    assert (harmonic_continuity(prompt, other, SR) < 0.2).all()
    flat = flatness(cont, SR)
    assert (flat < 0.05).all()
    assert (flatness(noisy, SR) > flat + 0.2).all()
    assert flatness(alone, SR) == pytest.approx(0.56, abs=0.03)  # white noise: e^-gamma


def test_pulse_clarity_is_high_on_a_click_track_and_low_on_noise():
    track = np.stack([clicks(4.0, 120.0), clicks(4.0, 90.0)])
    pulse, bpm = rhythm(track, SR)
    assert (pulse > 0.7).all()  # at most (n - lag) / n: the overlap of a 4 s clip with itself at the beat
    assert bpm == pytest.approx([120.0, 90.0], rel=0.03)
    white = noise((3, 4 * SR), "white", np.random.default_rng(0))
    assert (rhythm(white, SR)[0] < 0.35).all()


def test_same_tempo_forgives_octave_slips_only():
    assert same_tempo(np.array([120, 240, 60, 121, 90]), np.array([120, 120, 120, 120, 120])).tolist() == [
        True,
        True,
        True,
        True,
        False,
    ]


def test_clip_measures_fields_with_and_without_prompt():
    cont = np.stack([chord(4.0) + clicks(4.0, 120.0)])
    plain = clip_measures(cont, SR)
    assert set(plain[0]) == {"flatness", "pulse", "tempo"}
    full = clip_measures(cont, SR, prompt=np.stack([chord(3.0) + clicks(3.0, 120.0)]))[0]
    assert full["tempo_kept"] and full["continuity"] > 0.5 and full["prompt_pulse"] > 0.5
