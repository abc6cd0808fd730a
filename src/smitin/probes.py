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
from typing import Any, TypedDict

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .backbone import Backbone, HeadLayout
from .version import __version__

TENSORS = ("weight", "bias", "accuracy", "direction", "sigma", "mean_pos", "mean_neg")
METADATA_KEY = "smitin"


class DataSummary(TypedDict, total=False):
    """What a probe file says about its training data."""

    root: str
    layout: str | None
    segments: dict[str, int]  # positive, negative
    tracks: int
    fingerprint: str


class ProbeMeta(TypedDict, total=False):
    """A probe file's JSON header: enough to tell which model, trait and data it belongs to."""

    trait: str
    model: str
    weights: str  # the model's weights digest (Backbone.weights_digest)
    layout: str  # head layout fingerprint, e.g. L24xH16xD64
    sample_rate: int
    segment_seconds: float
    positions_per_segment: int
    text: str | None
    data: DataSummary
    training: dict[str, Any]  # split, regularisation, direction, counts
    accuracy: dict[str, float]  # best, median
    smitin: str  # version that wrote the file


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
    tol: float = 1e-3,
    chunk: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched L2 logistic regression: x [G, N, D], y [N] in {0, 1} -> weights [G, D], bias [G].

    Minimises 0.5 |w|^2 + C * sum(log-loss) per group g (scikit-learn's objective); the intercept
    is not penalised. Groups are solved `chunk` at a time, a block small enough to stay in cache:
    start from the LDA direction scaled by a guarded 2-parameter Newton fit, then take Newton steps
    whose gradient is exact float32 and whose Hessian X^T S X is a bfloat16 matmul (3x cheaper; an
    inexact Hessian changes only the convergence rate, never the fixed point, and a block falls back
    to float32 if it stops contracting). A factorised Hessian is reused while steps shrink 10x per
    iteration, and a step that raises a group's objective is halved. A block stops once every
    step is below `tol` relative to the weights: convergence is then (near) quadratic, so the
    weights are far closer than `tol` to the optimum.
    """
    g_all, n, d = x.shape
    y = y.to(device=x.device, dtype=torch.float32)
    weight = x.new_empty(g_all, d, dtype=torch.float32)
    bias = x.new_empty(g_all, dtype=torch.float32)
    for g0 in range(0, g_all, chunk):
        block = x[g0 : g0 + chunk].to(torch.float32).contiguous()
        w, b = _newton_block(block, y, 1.0 / C, max_iter, tol)
        weight[g0 : g0 + len(block)] = w
        bias[g0 : g0 + len(block)] = b
    return weight, bias


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (torch.nn.functional.softplus(logits) - y * logits).sum(-1)


def _lda_start(x: torch.Tensor, x16: torch.Tensor, y: torch.Tensor, reg: float) -> tuple:
    """LDA direction Sigma^-1 (mu1 - mu0), rescaled (with the intercept) to minimise the objective."""
    g, n, d = x.shape
    n1 = y.sum()
    n0 = n - n1
    gram = torch.bmm(x16.transpose(1, 2), x16).float()  # an approximate X^T X is enough here
    s1 = torch.bmm(y.expand(g, 1, n), x)[:, 0]
    mu1, mu0 = s1 / n1, (x.sum(1) - s1) / n0
    cov = (gram - n1 * mu1[:, :, None] * mu1[:, None, :] - n0 * mu0[:, :, None] * mu0[:, None, :]) / n
    diag = cov.diagonal(dim1=1, dim2=2)
    diag.add_(reg / n + 1e-4 * diag.mean(1, keepdim=True).clamp_min(1e-12))
    direction, info = torch.linalg.solve_ex(cov, (mu1 - mu0)[..., None])
    direction = torch.nan_to_num(torch.where(info[:, None, None] == 0, direction, 0)[..., 0], 0.0, 0.0, 0.0)
    u = torch.bmm(direction[:, None, :], x.transpose(1, 2))[:, 0]  # [g, N]
    norm2 = (direction * direction).sum(1)

    def objective(t, c):
        return _loss(t[:, None] * u + c[:, None], y) + 0.5 * reg * norm2 * t * t

    t, c = torch.zeros(g, device=x.device), torch.zeros(g, device=x.device)
    f = objective(t, c)
    for _ in range(10):
        p = torch.sigmoid(t[:, None] * u + c[:, None])
        r, s = p - y, p * (1 - p)
        su = s * u
        gt, gc = (r * u).sum(1) + reg * norm2 * t, r.sum(1)
        htt, htc, hcc = (su * u).sum(1) + reg * norm2 + 1e-12, su.sum(1), s.sum(1) + 1e-12
        det = htt * hcc - htc * htc
        dt, dc = (hcc * gt - htc * gc) / det, (htt * gc - htc * gt) / det
        for _halve in range(20):  # backtrack: the step must not raise the objective
            f_new = objective(t - dt, c - dc)
            worse = ~(f_new <= f)
            if not worse.any():
                break
            dt, dc = torch.where(worse, dt / 2, dt), torch.where(worse, dc / 2, dc)
        keep = f_new <= f
        t, c, f = torch.where(keep, t - dt, t), torch.where(keep, c - dc, c), torch.minimum(f_new, f)
        if bool((dt.abs() <= 1e-2 * (1 + t.abs())).all()):  # a start, not the answer
            break
    return direction * t[:, None], c


def _newton_block(x: torch.Tensor, y: torch.Tensor, reg: float, max_iter: int, tol: float):
    """Solve one cache-sized block of groups: x [g, N, D] float32 contiguous."""
    g, n, d = x.shape
    x16 = x.to(torch.bfloat16)
    x_t = x.transpose(1, 2)  # [g, D, N] view: row-vector x matrix products stay fast
    w, b = _lda_start(x, x16, y, reg)
    scaled16 = torch.empty_like(x16)
    hess = x.new_empty(g, d + 1, d + 1)
    ridge = torch.full((d + 1,), reg, dtype=x.dtype, device=x.device)
    ridge[d] = 1e-8  # intercept: (almost) unpenalised, keeps the Hessian positive definite
    low_precision, factor, previous, refresh = True, None, None, True
    f_old = w_old = b_old = None
    for _ in range(max_iter):
        logits = torch.bmm(w[:, None, :], x_t)[:, 0] + b[:, None]
        f = _loss(logits, y) + 0.5 * reg * (w * w).sum(1)
        if f_old is not None:
            worse = f > f_old + 1e-6 * f_old.abs()
            if worse.any():  # overshoot: halve those groups' last step and re-evaluate
                w = torch.where(worse[:, None], (w + w_old) / 2, w)
                b = torch.where(worse, (b + b_old) / 2, b)
                refresh = True
                continue
        p = torch.sigmoid(logits)
        r = p - y
        grad = torch.cat([torch.bmm(r[:, None, :], x)[:, 0] + reg * w, r.sum(1, keepdim=True)], 1)
        fresh = factor is None or refresh
        if fresh:
            s = p * (1 - p)
            if low_precision:
                torch.mul(x16, s.to(torch.bfloat16)[..., None], out=scaled16)
                top = torch.bmm(x16.transpose(1, 2), scaled16).float()
            else:
                top = torch.bmm(x_t, x * s[..., None])
            hess[:, :d, :d] = top
            edge = torch.bmm(s[:, None, :], x)[:, 0]
            hess[:, :d, d] = edge
            hess[:, d, :d] = edge
            hess[:, d, d] = s.sum(1)
            hess.diagonal(dim1=1, dim2=2).add_(ridge)
            factor, info = torch.linalg.cholesky_ex(hess)
            if bool(info.any()):  # not positive definite in bf16: redo this one in float32
                low_precision, factor = False, None
                continue
        assert factor is not None
        step = torch.cholesky_solve(grad[..., None], factor)[..., 0]
        f_old, w_old, b_old = f, w, b
        w, b = w - step[:, :d], b - step[:, d]
        size = float((step.abs().amax(1) / (1 + torch.maximum(w.abs().amax(1), b.abs()))).max())
        if size <= tol:
            break
        if previous is not None and fresh and low_precision and size > 0.5 * previous and size < 1e-2:
            low_precision = False  # bf16 curvature too coarse for these groups near the optimum
        refresh = previous is None or size > 0.1 * previous
        previous = size
    return w, b


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
    meta: ProbeMeta = field(default_factory=lambda: ProbeMeta())

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
    chunk: int = 16,
    meta: ProbeMeta | None = None,
) -> ProbeSet:
    """Train a probe on every head of z [N, L, H, D] (labels 1 = trait present), split by track.

    `direction`: "probe" (unit probe weights, the paper's default) or "mass_mean" (unit difference
    of class means, ITI's default). `chunk` heads are copied and solved at a time (a cache-sized block).
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
    groups_n = layers * heads
    dev = z.device  # activations on a GPU are trained there (pass a large `chunk`)
    flat = z.reshape(n, groups_n, dim)  # a view: samples are gathered block by block below
    tr_idx, va_idx = (~val).nonzero()[:, 0].to(dev), val.nonzero()[:, 0].to(dev)
    ytr, yva = y[~val].to(dev), y[val].to(dev)
    pos = (ytr == 1).to(torch.float32)
    weight = torch.empty(groups_n, dim, device=dev)
    bias = torch.empty(groups_n, device=dev)
    acc = torch.empty(groups_n, device=dev)
    unit = torch.empty(groups_n, dim, device=dev)
    sigma = torch.empty(groups_n, device=dev)
    mean_pos = torch.empty(groups_n, dim, device=dev)
    mean_neg = torch.empty(groups_n, dim, device=dev)
    block = torch.empty(0, device=dev)
    for g0 in range(0, groups_n, chunk):
        g1 = min(g0 + chunk, groups_n)
        part = flat[:, g0:g1].index_select(0, tr_idx).transpose(0, 1)  # [g, N_train, D]
        if block.shape != part.shape:
            block = torch.empty(part.shape, dtype=torch.float32, device=dev)
        block.copy_(part)  # layout and dtype in one pass
        w, b = fit_logistic(block, ytr, C=C, chunk=chunk)
        zva = flat[:, g0:g1].index_select(0, va_idx).transpose(0, 1).float()  # [g, N_val, D]
        logits = torch.bmm(w[:, None, :], zva.transpose(1, 2))[:, 0] + b[:, None]
        acc[g0:g1] = ((logits > 0) == yva.bool()).float().mean(1)
        s1, s_all = torch.bmm(pos.expand(len(block), 1, -1), block)[:, 0], block.sum(1)
        mp, mn = s1 / pos.sum(), (s_all - s1) / (len(pos) - pos.sum())
        raw = w if direction == "probe" else mp - mn
        u = raw / raw.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        sigma[g0:g1] = torch.bmm(u[:, None, :], block.transpose(1, 2))[:, 0].std(1)
        weight[g0:g1], bias[g0:g1], unit[g0:g1] = w, b, u
        mean_pos[g0:g1], mean_neg[g0:g1] = mp, mn
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
    meta = ProbeMeta(**(meta or {}), training=info)
    weight, bias, acc, unit, sigma, mean_pos, mean_neg = (
        t.cpu() for t in (weight, bias, acc, unit, sigma, mean_pos, mean_neg)
    )
    meta["accuracy"] = {"best": round(float(acc.max()), 4), "median": round(float(acc.median()), 4)}
    shape = (layers, heads)
    return ProbeSet(
        weight.reshape(*shape, dim),
        bias.reshape(shape),
        acc.reshape(shape),
        unit.reshape(*shape, dim),
        sigma.reshape(shape),
        mean_pos.reshape(*shape, dim),
        mean_neg.reshape(*shape, dim),
        meta,
    )


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
    meta: ProbeMeta = {
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
    if backbone.device.type != "cpu":  # train where the model runs: all heads in one block
        z = z.to(backbone.device)
        train_options.setdefault("chunk", z.shape[1] * z.shape[2])
    return train(z, labels, groups, meta=meta, **train_options)


def fit_cached(
    backbone: Backbone,
    segments,
    out: str | Path,
    *,
    cache_dir: str | Path | None = None,
    reuse: bool = True,
    **fit_options,
) -> ProbeSet:
    """`fit` with an activation cache, then save to `out`: the one way the CLI, UI and runner train.

    With `reuse`, a probe file already at `out` made on these weights from the same data is
    loaded instead of retrained. Activations go to `cache_dir` (default: `out` with suffix
    `.cache`), so an interrupted run resumes. `fit_options` go to `fit`.
    """
    out = Path(out)
    if reuse and out.is_file():
        probes = ProbeSet.load(out)
        same_data = probes.meta.get("data", {}).get("fingerprint") == segments.fingerprint()
        if probes.meta.get("weights") == backbone.weights_digest() and same_data:
            return probes
    cache = Path(cache_dir) if cache_dir is not None else out.with_suffix(".cache")
    probes = fit(backbone, segments, cache_dir=cache, **fit_options)
    probes.save(out)
    return probes
