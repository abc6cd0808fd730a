"""What the judges hear: window embeddings and FAD on audio."""

import numpy as np
import pytest

from smitin.experiment.features import BANDS, window_embeddings
from smitin.experiment.metrics import fad

SR = 16000


def test_fad_on_audio_embeddings(tone_clips):
    clean, noisy = tone_clips(6, 0, False), tone_clips(6, 1, True)
    e_clean, e_other = window_embeddings(clean, SR), window_embeddings(tone_clips(6, 2, False), SR)
    assert e_clean.shape == (6, 4, 2 * BANDS)
    assert fad(e_clean, e_clean) == pytest.approx(0, abs=1e-6)
    assert fad(window_embeddings(noisy, SR), e_clean) > fad(e_other, e_clean)
    # loudness alone does not move the embedding (clips are RMS-normalised)
    assert np.allclose(window_embeddings(0.1 * clean, SR), e_clean, atol=1e-3)
