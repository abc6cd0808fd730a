"""`smitin demo`'s keep measures: what each clip kept of the music, read from the audio."""

import numpy as np

from smitin.demo import keep_measures, keep_note


def _chords(sr: int, seconds: float = 3.0) -> np.ndarray:
    """A plucked C major / A minor pattern: harmony and a steady pulse (2 notes per second)."""
    t = np.arange(int(sr * seconds)) / sr
    env = np.exp(-6 * (t % 0.5))
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0, 130.8))
    return (0.1 * env * chord).astype(np.float32)


def test_noise_in_place_of_the_music_shows_in_every_keep_measure():
    sr = 16000
    music = _chords(sr)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(music)).astype(np.float32) * 0.1
    m = keep_measures({"unsteered": music, "added": music + 0.3 * noise, "replaced": noise}, sr)
    assert list(m) == ["unsteered", "added", "replaced"]
    # the unsteered clip against itself (frame by frame against its own average profile: below 1)
    assert m["unsteered"]["harmony_kept"] > max(0.8, m["added"]["harmony_kept"])
    assert m["replaced"]["harmony_kept"] < 0.2 < m["added"]["harmony_kept"]
    assert m["replaced"]["flatness"] > m["added"]["flatness"] > m["unsteered"]["flatness"]
    assert m["unsteered"]["pulse"] > 0.5 > m["replaced"]["pulse"]
    assert "flatness" in keep_note(m["added"]) and "harmony" in keep_note(m["added"])
