"""One logistic-regression probe per attention head, all heads trained at once; `ProbeSet` files.

Every head's probe is an independent L2-regularised logistic regression on 64-wide (head_dim)
inputs, so all of them are solved together as one batched Newton iteration: Hessians are
[heads, D+1, D+1], tiny, and one batched Cholesky solve per step replaces a loop over heads.
The objective matches scikit-learn's `LogisticRegression(C=C)` (unpenalised intercept).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import __version__
from .backbone import Backbone, HeadLayout

TENSORS = ("weight", "bias", "accuracy", "direction", "sigma", "mean_pos", "mean_neg")
METADATA_KEY = "smitin"


class ProbeFileError(ValueError):
    """A probe file is missing, damaged, foreign, or made for another model."""


def split_by_group(groups, val_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Boolean mask of validation samples: whole tracks go to one side, never straddle it."""
    names = np.asarray(groups)
    unique = np.unique(names)
    if len(unique) < 2:
        raise ValueError(
            f"need segments from at least 2 tracks to validate by track, got {len(unique)}; add more tracks"
        )
    rng = np.random.default_rng(seed)
    n_val = min(len(unique) - 1, max(1, round(val_fraction * len(unique))))
    val_tracks = rng.permutation(unique)[:n_val]
    return np.isin(names, val_tracks)


@torch.no_grad()
def fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    C: float = 1.0,
    max_iter: int = 30,
    tol: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched L2 logistic regression: x [G, N, D], y [N] in {0, 1} -> weights [G, D], bias [G].

    Minimises 0.5 |w|^2 + C * sum(log-loss) per group g (scikit-learn's objective) by Newton's
    method; the intercept is not penalised.
    """
    g, n, d = x.shape
    x1 = torch.cat([x, x.new_ones(g, n, 1)], dim=-1)  # bias column
    y = y.to(x.dtype)
    reg = torch.full((d + 1,), 1.0 / C, dtype=x.dtype, device=x.device)
    reg[-1] = 1e-8  # intercept: (almost) unpenalised, keeps the Hessian positive definite
    w = x.new_zeros(g, d + 1)
    eye = torch.diag(reg)
    for _ in range(max_iter):
        logits = torch.einsum("gnd,gd->gn", x1, w)
        p = torch.sigmoid(logits)
        grad = torch.einsum("gnd,gn->gd", x1, p - y) + reg * w
        s = (p * (1 - p)).clamp_min(1e-10)
        hess = torch.einsum("gnd,gne->gde", x1 * s[..., None], x1) + eye
        step = torch.cholesky_solve(grad[..., None], torch.linalg.cholesky(hess))[..., 0]
        w -= step
        if step.abs().max() < tol:
            break
    return w[:, :d], w[:, d]


@dataclass
class ProbeSet:
    """A trait's probes on every head of one model, and what they were trained on.

    Tensors are [L, H, ...]: weight/direction/mean_pos/mean_neg [L, H, D]; bias/accuracy/sigma [L, H].
    """

    weight: torch.Tensor
    bias: torch.Tensor
    accuracy: torch.Tensor
    direction: torch.Tensor
    sigma: torch.Tensor
    mean_pos: torch.Tensor
    mean_neg: torch.Tensor
    meta: dict = field(default_factory=dict)

    @property
    def trait(self) -> str:
        return str(self.meta.get("trait", "trait"))

    @property
    def layout(self) -> HeadLayout:
        return HeadLayout(*self.weight.shape)

    def top(self, k: int) -> torch.Tensor:
        """Flat indices (l * H + h) of the k heads with the best validation accuracy."""
        k = min(k, self.accuracy.numel())
        return torch.topk(self.accuracy.flatten().float(), k).indices

    def threshold(self) -> float:
        """The paper's monitor threshold: median(acc) - std(acc) over all heads."""
        acc = self.accuracy.flatten().double()
        return float(acc.median() - acc.std())

    def probability(self, z: torch.Tensor) -> torch.Tensor:
        """Probe probabilities for z [..., L, H, D] -> [..., L, H]."""
        z = z.to(self.weight.dtype)
        return torch.sigmoid(torch.einsum("...lhd,lhd->...lh", z, self.weight) + self.bias)

    def check(self, backbone: Backbone, path: str | Path | None = None) -> None:
        """Refuse probes made for another head layout; warn if made on other weights."""
        where = f"{path}: " if path else ""
        if self.layout != backbone.layout:
            raise ProbeFileError(
                f"{where}probes were trained on {self.meta.get('model', '?')} ({self.layout.fingerprint()}), "
                f"but {backbone.name} has heads {backbone.layout.fingerprint()}; "
                f"train probes for this model with `smitin probes train --model {backbone.name}`"
            )
        digest = self.meta.get("weights")
        if digest and digest != backbone.weights_digest():
            warnings.warn(
                f"{where}probes were trained on {self.meta.get('model')} whose weights differ from "
                f"{backbone.name}'s (same layout); steering may be weaker",
                stacklevel=2,
            )

    def summary(self, k: int = 10) -> str:
        """Human-readable: trait, model, data, threshold and the best heads."""
        acc = self.accuracy
        lines = [
            f"trait {self.trait!r} on {self.meta.get('model', '?')} ({self.layout.fingerprint()})",
            f"data: {json.dumps(self.meta.get('data', {}))}",
            f"validation accuracy: best {acc.max():.3f}, median {acc.median():.3f}, mean {acc.mean():.3f}; "
            f"monitor threshold {self.threshold():.3f}",
            "best heads (layer, head, accuracy):",
        ]
        heads = self.layout.heads
        for i in self.top(k).tolist():
            lines.append(f"  L{i // heads:>3} H{i % heads:>3}  {acc.flatten()[i]:.3f}")
        return "\n".join(lines)

    # -- files -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: getattr(self, name).detach().float().cpu().contiguous() for name in TENSORS}
        meta = {**self.meta, "smitin": __version__, "layout": self.layout.fingerprint()}
        save_file(tensors, path, metadata={METADATA_KEY: json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | Path, backbone: Backbone | None = None) -> ProbeSet:
        """Read a probe file; with `backbone`, also check that it fits that model."""
        path = Path(path)
        if not path.is_file():
            raise ProbeFileError(f"{path}: no such probe file; train one with `smitin probes train`")
        try:
            with safe_open(path, framework="pt") as f:
                header = f.metadata() or {}
                missing = [t for t in TENSORS if t not in f.keys()]
                if METADATA_KEY not in header or missing:
                    raise ProbeFileError(
                        f"{path}: a safetensors file but not a smitin probe file "
                        f"(missing {', '.join(missing) or 'smitin metadata'}); train one with `smitin probes train`"
                    )
                tensors = {t: f.get_tensor(t) for t in TENSORS}
            meta = json.loads(header[METADATA_KEY])
        except (SafetensorError, OSError, json.JSONDecodeError, RuntimeError) as err:
            raise ProbeFileError(
                f"{path}: not a readable probe file (truncated, damaged or another format: {err}); "
                "re-download it or retrain with `smitin probes train`"
            ) from None
        shapes = {t.shape[:2] for t in tensors.values()}
        if len(shapes) != 1:
            raise ProbeFileError(
                f"{path}: tensors disagree on [layers, heads] ({shapes}); the file is damaged"
            )
        probes = cls(**tensors, meta=meta)
        if backbone is not None:
            probes.check(backbone, path)
        return probes


def train(
    z: torch.Tensor,
    labels,
    groups,
    *,
    val_fraction: float = 0.2,
    C: float = 1.0,
    direction: str = "probe",
    seed: int = 0,
    chunk: int = 256,
    meta: dict | None = None,
) -> ProbeSet:
    """Train a probe on every head of z [N, L, H, D] (labels 1 = trait present), split by track.

    `direction`: "probe" (unit probe weights, the paper's default) or "mass_mean" (unit difference
    of class means, ITI's default). `chunk` heads are solved per batched Newton run to bound memory.
    """
    if direction not in ("probe", "mass_mean"):
        raise ValueError(f"direction must be 'probe' or 'mass_mean', not {direction!r}")
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if set(y.unique().tolist()) != {0, 1}:
        raise ValueError("probes need segments of both classes (trait present and absent)")
    val = torch.from_numpy(split_by_group(groups, val_fraction, seed))
    for name, part in (("training", ~val), ("validation", val)):
        if len(y[part].unique()) < 2:
            raise ValueError(f"the {name} tracks hold only one class; add tracks with and without the trait")
    n, layers, heads, dim = z.shape
    x = z.reshape(n, layers * heads, dim).transpose(0, 1)  # [G, N, D]
    weight, bias, acc = [], [], []
    ytr, yva = y[~val], y[val]
    for g0 in range(0, layers * heads, chunk):
        xs = x[g0 : g0 + chunk].float()
        w, b = fit_logistic(xs[:, ~val], ytr, C=C)
        pred = (torch.einsum("gnd,gd->gn", xs[:, val], w) + b[:, None]) > 0
        acc.append((pred == yva.bool()).float().mean(1))
        weight.append(w)
        bias.append(b)
    w = torch.cat(weight).reshape(layers, heads, dim)
    ztr = z[~val].float()
    mean_pos = ztr[ytr == 1].mean(0)
    mean_neg = ztr[ytr == 0].mean(0)
    raw = w if direction == "probe" else mean_pos - mean_neg
    unit = raw / raw.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    sigma = torch.einsum("nlhd,lhd->nlh", ztr, unit).std(0)
    info = {
        "direction": direction,
        "C": C,
        "val_fraction": val_fraction,
        "seed": seed,
        "train": {
            "segments": int((~val).sum()),
            "positive": int(ytr.sum()),
            "tracks": _n_groups(groups, ~val),
        },
        "validation": {
            "segments": int(val.sum()),
            "positive": int(yva.sum()),
            "tracks": _n_groups(groups, val),
        },
    }
    meta = {**(meta or {}), "training": info}
    acc_t = torch.cat(acc).reshape(layers, heads)
    meta["accuracy"] = {"best": round(float(acc_t.max()), 4), "median": round(float(acc_t.median()), 4)}
    return ProbeSet(w, torch.cat(bias).reshape(layers, heads), acc_t, unit, sigma, mean_pos, mean_neg, meta)


def _n_groups(groups, mask) -> int:
    return len(np.unique(np.asarray(groups)[mask.numpy()]))


def fit(
    backbone: Backbone,
    segments,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 8,
    last: int = 1,
    text: str | None = None,
    progress: bool = True,
    **train_options,
) -> ProbeSet:
    """Extract activations for a segment set (smitin.data) and train its trait's probes.

    `train_options` go to `train` (val_fraction, C, direction, seed). The file's metadata records
    the model, its head layout and weights digest, and a summary of the data.
    """
    from .activations import extract

    acts = extract(
        backbone,
        segments,
        batch_size=batch_size,
        last=last,
        text=text,
        cache_dir=cache_dir,
        progress=progress,
    )
    z, labels, groups = acts.flat()
    summary = getattr(segments, "summary", {}) or {}
    meta = {
        "trait": segments.trait,
        "model": backbone.name,
        "weights": backbone.weights_digest(),
        "sample_rate": backbone.sample_rate,
        "segment_seconds": segments.seconds,
        "positions_per_segment": last,
        "text": text,
        "data": {
            "root": str(summary.get("root", "")),
            "layout": summary.get("layout"),
            "segments": {"positive": int((labels == 1).sum()), "negative": int((labels == 0).sum())},
            "tracks": len(set(groups)),
            "fingerprint": segments.fingerprint(),
        },
    }
    return train(z, labels, groups, meta=meta, **train_options)
