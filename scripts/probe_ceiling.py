"""How separable is a trait's probe data at all? Classifiers trained directly on the audio, same split.

SMITIN's probes are linear read-outs of one attention head of a generative model; a classifier
trained on the clean audio of the same segments, with the same by-track split, is a fair
ceiling for them. If it stays below a target, no model's heads will reach it on that data.

    python scripts/probe_ceiling.py --data ~/.cache/smitin/renders/synth150_16k --trait bass
"""

import argparse

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from smitin import data
from smitin.codec import MelCodecConfig, MelCodecModel
from smitin.probes import split_by_group


def log_mels(segments: data.SegmentSet, sample_rate: int) -> torch.Tensor:
    """[N, frames, 80] standardisable log-mel frames (the bundled codec's analysis, no quantising)."""
    codec = MelCodecModel(MelCodecConfig(sampling_rate=sample_rate))
    out = []
    for start in range(0, len(segments), 64):
        idx = list(range(start, min(len(segments), start + 64)))
        audio = torch.from_numpy(np.ascontiguousarray(segments.load(idx))).reshape(len(idx), -1)
        out.append(codec.log_mel(audio))
    return torch.cat(out).float()


def cnn_accuracy(x: torch.Tensor, y: np.ndarray, train: np.ndarray, epochs: int, seed: int) -> float:
    """A 3-layer 1-D CNN over log-mel frames; validation accuracy after the last epoch."""
    torch.manual_seed(seed)
    conv = [torch.nn.Conv1d(80 if i == 0 else 128, 128, 5, padding=2) for i in range(3)]
    net = torch.nn.Sequential(
        conv[0], torch.nn.ReLU(), torch.nn.MaxPool1d(2),
        conv[1], torch.nn.ReLU(), torch.nn.MaxPool1d(2),
        conv[2], torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(),
        torch.nn.Dropout(0.3), torch.nn.Linear(128, 1),
    )  # fmt: skip
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-2)
    x, labels = x.transpose(1, 2), torch.from_numpy(y).float()
    tr, va = np.flatnonzero(train), torch.from_numpy(np.flatnonzero(~train))
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        net.train()
        for batch in np.array_split(rng.permutation(tr), max(1, len(tr) // 64)):
            j = torch.from_numpy(batch)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[j])[:, 0], labels[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return float(((net(x[va])[:, 0] > 0).float() == labels[va]).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="stem collection (e.g. a smitin.synth render)")
    p.add_argument("--trait", required=True)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--seconds", type=float, default=3.0, help="segment length (the probes' default)")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    segs = data.stem_segments(args.data, args.trait, sample_rate=args.sample_rate, seconds=args.seconds)
    y, val = segs.labels(), split_by_group(segs.groups(), 0.2, 0)  # the probes' split
    x = log_mels(segs, args.sample_rate)
    t = torch.from_numpy(~val)
    x = (x - x[t].mean((0, 1))) / x[t].std((0, 1))
    stats = torch.cat([x.mean(1), x.std(1)], 1).numpy()
    hgb = HistGradientBoostingClassifier(max_iter=300, random_state=args.seed).fit(stats[~val], y[~val])
    print(f"{args.trait}: {len(segs)} segments, {int(val.sum())} for validation")
    print(f"  gradient boosting on log-mel mean+std: {hgb.score(stats[val], y[val]):.3f}")
    print(
        f"  CNN on log-mel frames ({args.epochs} epochs): {cnn_accuracy(x, y, ~val, args.epochs, args.seed):.3f}"
    )


if __name__ == "__main__":
    main()
