"""What the judges hear: a fixed 16 kHz log-mel front end, clip statistics and window embeddings.

`clip_features` (log-mel statistics per clip) feed the instrument classifier; `window_embeddings`
(log-mel band statistics per 0.5 s window) feed FAD and the similarity metrics. Clips are
RMS-normalised first, so loudness alone never decides.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..audio import normalise_loudness, resample

JUDGE_RATE = 16000  # the classifier and embeddings always listen at this rate
WINDOW_SECONDS = 0.5  # one embedding per window: FAD needs many samples per set
BANDS = 20  # 80 mel bands pooled to 20 -> 40-d embeddings (mean, std per band)

_FRONTEND: Any = None


def frontend() -> Any:
    """A mel analyser (the mel codec's, unfitted: only its STFT + filterbank are used) at 16 kHz."""
    global _FRONTEND
    if _FRONTEND is None:
        from ..codec import MelCodecConfig, MelCodecModel

        _FRONTEND = MelCodecModel(MelCodecConfig(sampling_rate=JUDGE_RATE)).eval()
    return _FRONTEND


def at_judge_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N, S] clips -> [N, S'] float32 at 16 kHz."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    if sample_rate == JUDGE_RATE:
        return audio
    return np.stack([resample(a, sample_rate, JUDGE_RATE) for a in audio])


def clip_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N, S] -> [N, 240] log-mel statistics per clip: band means, stds, mean absolute frame change.

    Deliberately simple (what a logistic regression on log-mel statistics can see); clips are
    RMS-normalised first, so loudness alone never decides.
    """
    x = torch.from_numpy(np.stack([normalise_loudness(a) for a in at_judge_rate(audio, sample_rate)]))
    with torch.no_grad():
        lm = frontend().log_mel(x)  # [N, T, 80]
    diff = (lm[:, 1:] - lm[:, :-1]).abs().mean(1)
    return torch.cat([lm.mean(1), lm.std(1), diff], dim=1).numpy()


def window_embeddings(audio: np.ndarray, sample_rate: int, seconds: float = WINDOW_SECONDS) -> np.ndarray:
    """[N, S] -> [N, W, 2 * BANDS]: per window, mean and std of log-mel pooled into BANDS bands.

    Clips are RMS-normalised first, so loudness alone never separates two sets.
    """
    x = at_judge_rate(audio, sample_rate)
    x = np.stack([normalise_loudness(a) for a in x])
    with torch.no_grad():
        lm = frontend().log_mel(torch.from_numpy(x))  # [N, T, 80]
    n, t, m = lm.shape
    lm = lm[..., : m - m % BANDS].reshape(n, t, BANDS, -1).mean(-1)
    hop = frontend().config.hop_length
    per = max(1, int(round(seconds * JUDGE_RATE / hop)))
    w = max(1, t // per)
    win = lm[:, : w * per].reshape(n, w, per, BANDS)
    return torch.cat([win.mean(2), win.std(2)], dim=-1).numpy().astype(np.float64)
