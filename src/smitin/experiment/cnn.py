"""The second independent judge: a small CNN on log-mel frames (`CNNJudge`).

Of another kind than `judges.ClassifierJudge` (a linear model on clip statistics): it sees the
time-frequency picture (64 mel bands x frames at 16 kHz, its own front end, not the classifier's),
so rhythm and onsets can count, not only average spectra. Three 3x3 conv blocks (8, 16, 32
channels, batch norm, ReLU, 2x2 max pooling), mean + max pooled over time, one logistic output:
about 6k parameters, trained in seconds on CPU. Saved as safetensors + JSON, never pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import normalise_loudness
from .features import JUDGE_RATE, at_judge_rate

N_MELS = 64
N_FFT = 1024
HOP = 320  # 50 frames per second at 16 kHz
CHANNELS = (8, 16, 32)

_FILTERBANK: dict[int, torch.Tensor] = {}


def _mel_filterbank(n_mels: int = N_MELS, fmin: float = 30.0) -> torch.Tensor:
    """[N_FFT // 2 + 1, n_mels] triangular filters on the HTK mel scale, 30 Hz to Nyquist."""
    if n_mels not in _FILTERBANK:

        def mel(f: np.ndarray) -> np.ndarray:
            return 2595 * np.log10(1 + f / 700)

        edges = np.linspace(mel(np.array(fmin)), mel(np.array(JUDGE_RATE / 2)), n_mels + 2)
        hz = 700 * (10 ** (edges / 2595) - 1)
        bins = np.linspace(0, JUDGE_RATE / 2, N_FFT // 2 + 1)
        lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
        fb = np.maximum(0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
        _FILTERBANK[n_mels] = torch.from_numpy(fb.T).float()
    return _FILTERBANK[n_mels]


def log_mel_frames(audio: np.ndarray, sample_rate: int) -> torch.Tensor:
    """[N, S] clips -> [N, 64, T] log-mel at 16 kHz, RMS-normalised first (loudness never decides)."""
    x = np.stack([normalise_loudness(a) for a in at_judge_rate(audio, sample_rate)])
    spec = torch.stft(
        torch.from_numpy(np.ascontiguousarray(x, np.float32)),
        N_FFT,
        HOP,
        window=torch.hann_window(N_FFT),
        return_complex=True,
    )
    power = spec.abs() ** 2  # [N, F, T]
    return torch.log(torch.einsum("nft,fm->nmt", power, _mel_filterbank()) + 1e-6)


class MelCNN(torch.nn.Module):
    """[N, M, T] log-mel -> [N] logit of "trait present"."""

    def __init__(self, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        c = 1
        for w in channels:
            layers += [
                torch.nn.Conv2d(c, w, 3, padding=1),
                torch.nn.BatchNorm2d(w),
                torch.nn.ReLU(),
                torch.nn.MaxPool2d(2),
            ]
            c = w
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(2 * c, 1)

    def forward(self, lm: torch.Tensor) -> torch.Tensor:
        x = lm - lm.mean((1, 2), keepdim=True)  # level-free, as the clips are
        h = self.body(x[:, None]).mean(2)  # [N, C, T']: bands pooled
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], 1))[:, 0]


def train_net(
    lm: torch.Tensor, labels: np.ndarray, epochs: int = 12, seed: int = 0, batch: int = 32
) -> MelCNN:
    """Fit a `MelCNN` with binary cross-entropy on random 75% crops in time; the global RNG is untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = MelCNN()
        opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-3)
        y = torch.from_numpy(np.asarray(labels, np.float32))
        crop = max(8, int(lm.shape[-1] * 0.75))
        for _ in range(epochs):
            net.train()
            perm = torch.randperm(len(lm))
            for i in range(0, len(lm), batch):
                b = perm[i : i + batch]
                if len(b) < 2:  # batch norm needs two clips
                    continue
                start = int(torch.randint(0, lm.shape[-1] - crop + 1, (1,)))
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    net(lm[b, :, start : start + crop]), y[b]
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
    return net.eval()


@dataclass
class CNNJudge:
    """A `MelCNN` for one trait, with its decision threshold and held-out accuracy.

    `threshold` starts at 0.5; the experiment calibrates it on real with/without pairs passed
    through the model's codec (Youden's J, `stats.youden_threshold`). Trained on rendered stem
    mixes (never model output), like the classifier.
    """

    trait: str
    net: MelCNN
    threshold: float = 0.5
    accuracy: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def train(
        cls,
        trait: str,
        audio: np.ndarray,
        labels: np.ndarray,
        sample_rate: int,
        epochs: int = 12,
        seed: int = 0,
        **info: Any,
    ) -> CNNJudge:
        """Fit on clips [N, S] with labels (1 = trait present); several domains may be stacked in."""
        labels = np.asarray(labels)
        if len(set(labels.tolist())) < 2:
            raise ValueError(f"the {trait} CNN judge needs clips with and without {trait}")
        net = train_net(log_mel_frames(audio, sample_rate), labels, epochs=epochs, seed=seed)
        params = sum(p.numel() for p in net.parameters())
        return cls(
            trait, net, info={"train_clips": int(len(labels)), "epochs": epochs, "params": params, **info}
        )

    @torch.no_grad()
    def proba(self, audio: np.ndarray, sample_rate: int, batch: int = 64) -> np.ndarray:
        """P(trait present) per clip."""
        audio = np.atleast_2d(audio)
        out = [
            torch.sigmoid(self.net(log_mel_frames(audio[i : i + batch], sample_rate))).numpy()
            for i in range(0, len(audio), batch)
        ]
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def present(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        p = self.proba(audio, sample_rate)
        return p >= self.threshold, p

    def save(self, path: str | Path) -> Path:
        """safetensors weights + JSON metadata (trait, threshold, accuracy, info, architecture)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "trait": self.trait,
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "info": self.info,
            "channels": list(CHANNELS),
            "n_mels": N_MELS,
        }
        state = {
            k: v.detach().clone().contiguous() for k, v in self.net.state_dict().items()
        }  # own storage each
        save_file(state, str(path), metadata={"smitin_cnn_judge": json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> CNNJudge:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["smitin_cnn_judge"])
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        net = MelCNN(tuple(meta["channels"]))
        net.load_state_dict(state)
        return cls(meta["trait"], net.eval(), float(meta["threshold"]), meta["accuracy"], meta["info"])
