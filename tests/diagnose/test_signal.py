import numpy as np
import pytest

from smitin.diagnose.signal import add_noise, flatness, noise, rms_db

SR = 16000


def test_flatness_tells_noise_from_tones():
    t = np.arange(SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    white = noise("white", (1, SR))[0] * 0.1
    got = flatness(np.stack([tone, white, tone + 0.3 * white]), SR)
    assert got[0] < 0.05 and got[1] > 0.5 and got[0] < got[2] < got[1]


def test_noise_kinds_and_levels():
    white, pink = noise("white", (2, 8192), seed=1), noise("pink", (2, 8192), seed=1)
    assert np.allclose(np.sqrt((pink**2).mean(-1)), 1.0, atol=1e-4)
    spec = np.abs(np.fft.rfft(pink, axis=-1)) ** 2
    lo, hi = spec[:, 10:100].mean(), spec[:, 2000:4000].mean()
    assert lo > 20 * hi  # pink: power falls with frequency; white stays flat
    wspec = np.abs(np.fft.rfft(white, axis=-1)) ** 2
    assert 0.5 < wspec[:, 10:100].mean() / wspec[:, 2000:4000].mean() < 2
    clip = np.full((1, 8192), 0.2, np.float32)
    noisy = add_noise(clip, "white", 0.5)
    assert np.sqrt(((noisy - clip) ** 2).mean()) == pytest.approx(0.1, rel=1e-3)
    assert np.array_equal(add_noise(clip, "pink", 0.0), clip)
    assert rms_db(clip)[0] == pytest.approx(20 * np.log10(0.2), abs=1e-3)
    with pytest.raises(ValueError, match="noise must be one of"):
        noise("brown", (1, 10))
