"""One logistic-regression probe per attention head, all heads trained at once; `ProbeSet` files.

The solver (all heads as one batched Newton iteration) is `smitin.logistic`; this module splits
the data by track, derives directions and spreads, and reads and writes probe files.
About 600 lines: the file format and its checks (a file that does not fit the model, or whose
push could overflow a step, is refused) and the choice of direction (`resolve`, `noise_vs_trait`)
live with the class they describe.
"""

from __future__ import annotations

import json
import os
import re
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .backbone import Backbone, HeadLayout
from .logistic import fit_logistic
from .version import __version__

TENSORS = ("weight", "bias", "accuracy", "direction", "sigma", "mean_pos", "mean_neg")
# unit probe weights (the paper's), class-mean difference (ITI's), or the class-mean difference blind
# to broadband noise (smitin's: its component along the heads' mean response to white noise removed)
DIRECTIONS = ("probe", "mass_mean", "denoised")
# Written since 0.2: every direction with the spread of the training activations along it, so the
# direction is a steering-time choice. Files without them hold only their training's direction.
DIRECTION_TENSORS = tuple(f"{kind}_{d}" for d in DIRECTIONS for kind in ("direction", "sigma"))
METADATA_KEY = "smitin"
MAX_VALUE = 1e6  # |any value| in a probe file; trained probes hold values near 1 (weights, means: < 100)
AUTO = "auto"  # a steering-time choice between the class mean and the probe weights (`ProbeSet.resolve`)
NOISY_DIRECTION = 0.5  # noise moving a direction this far (x the trait's own move) makes it noise-prone
MAX_SHIFT = 1e4  # |direction| x sigma x the largest strength: the most one step may add to a head


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
    noise_response: dict[str, Any]  # what the denoised direction is blind to (colour, level, segments)
    accuracy: dict[str, float]  # best, median
    smitin: str  # version that wrote the file


WEAK = (
    "weak probes: the paper's threshold median(acc) - std(acc) is at most 0.5, so with --threshold paper "
    "the monitor would read the trait as present almost at once and stop steering. Train on more tracks "
    "(on the bundled model, bass probes from 27 songs had median 0.54 and did not steer; from 50 songs "
    "0.68, and they did), and keep the default threshold ('positive')"
)


class ProbeFileError(ValueError):
    """A probe file is missing, damaged, foreign, or made for another model."""


@dataclass
class ProbeSet:
    """A trait's probes on every head of one model, and what they were trained on.

    Tensors are [L, H, ...]: weight/direction/mean_pos/mean_neg [L, H, D]; bias/accuracy/sigma [L, H].
    `direction`/`sigma` are the training's default direction (`meta["training"]["direction"]`);
    `directions` holds every direction by name as (unit [L, H, D], sigma [L, H]) where the file has it.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    accuracy: torch.Tensor
    direction: torch.Tensor
    sigma: torch.Tensor
    mean_pos: torch.Tensor
    mean_neg: torch.Tensor
    meta: ProbeMeta = field(default_factory=lambda: ProbeMeta())
    directions: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    @property
    def default_direction(self) -> str:
        return str(self.meta.get("training", {}).get("direction", "probe"))

    def resolve(self, direction: str | None) -> str:
        """The direction a name steers along: None is the file's default; "auto" is the class-mean
        difference when noise barely moves it (`noise_vs_trait` below NOISY_DIRECTION: it then pushes
        hardest at no cost in noise), else the probe weights (and for files without that reading)."""
        if direction is None:
            return self.default_direction
        if direction != AUTO:
            return direction
        ratio = self.meta.get("noise_response", {}).get("vs_trait", {}).get("mass_mean")
        quiet = isinstance(ratio, (int, float)) and ratio < NOISY_DIRECTION and "mass_mean" in self.directions
        return "mass_mean" if quiet else "probe"

    def steering_vectors(self, direction: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(unit direction [L, H, D], sigma [L, H]) to steer along; None: the file's default;
        "auto": see `resolve`."""
        name = self.resolve(direction)
        if name not in DIRECTIONS:
            raise ValueError(f"direction must be one of {(*DIRECTIONS, AUTO)}, not {name!r}")
        if name in self.directions:
            return self.directions[name]
        if name == self.default_direction:
            return self.direction, self.sigma
        if name == "denoised" and "mass_mean" in self.directions:  # a file from an older smitin
            warnings.warn(
                f"{self.trait} probes hold no noise-blind direction (written by an older smitin): steering "
                "along the class-mean direction, which noise also raises; retrain them with "
                "`smitin probes train` to push without asking for noise",
                stacklevel=2,
            )
            return self.directions["mass_mean"]
        raise ProbeFileError(
            f"{self.trait} probes hold only the {self.default_direction!r} direction (a file written before "
            f"smitin 0.2); retrain them with `smitin probes train` to steer along {name!r}, or steer with "
            "the paper's recipe (`--recipe paper`, direction 'probe')"
        )

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

    def class_reading(self, heads: torch.Tensor, positive: bool = True) -> float:
        """C on a class mean: the median over `heads` (flat indices) of each probe's probability at
        the mean activation of the positive (or negative) training class."""
        w = self.weight.float().flatten(0, 1)[heads]
        b = self.bias.float().flatten()[heads]
        mean = (self.mean_pos if positive else self.mean_neg).float().flatten(0, 1)[heads]
        return float(torch.sigmoid((w * mean).sum(-1) + b).median())

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

    def noise_vs_trait(self, shift: torch.Tensor, k: int = 16) -> dict[str, float]:
        """Per direction: how far the heads' mean response to noise (`shift` [L, H, D]) moves the k
        best heads along it, against how far the trait itself does (class means), median over the
        heads. Near 1 or above: a push along it can be satisfied by noise (docs/diagnosis.md s. 8)."""
        heads = self.top(k)
        trait = (self.mean_pos - self.mean_neg).float().flatten(0, 1)[heads]
        noise = shift.float().flatten(0, 1)[heads]
        out: dict[str, float] = {}
        for name in ("mass_mean", "probe"):
            if name not in self.directions and name != self.default_direction:
                continue
            unit = self.steering_vectors(name)[0].float().flatten(0, 1)[heads]
            along = (trait * unit).sum(-1)
            out[name] = round(float(((noise * unit).sum(-1) / along.abs().clamp_min(1e-6)).median()), 3)
        return out

    def summary(self, k: int = 10) -> str:
        """Human-readable: trait, model, data, threshold and the best heads."""
        acc = self.accuracy
        lines = [
            f"trait {self.trait!r} on {self.meta.get('model', '?')} ({self.layout.fingerprint()})",
            f"data: {json.dumps(self.meta.get('data', {}))}",
            f"validation accuracy: best {acc.max():.3f}, median {acc.median():.3f}, mean {acc.mean():.3f}; "
            f"monitor threshold: positive {self.class_reading(self.top(16)):.3f} (default), "
            f"paper {self.threshold():.3f}",
            "best heads (layer, head, accuracy):",
        ]
        heads = self.layout.heads
        for i in self.top(k).tolist():
            lines.append(f"  L{i // heads:>3} H{i % heads:>3}  {acc.flatten()[i]:.3f}")
        if self.threshold() <= 0.5:
            lines.append(WEAK)
        noise = self.meta.get("noise_response", {})
        ratio = noise.get("vs_trait", {})
        if "mass_mean" in ratio:
            r = ratio["mass_mean"]
            advice = (
                "a push along it can ask the model for noise, so the default (auto) pushes along the probe weights"
                if r >= NOISY_DIRECTION
                else "it carries little noise, so the default (auto) pushes along it, the harder push"
            )
            lines.append(
                f"white noise at {noise.get('level_x_rms', '?')}x RMS moves the class-mean direction {r:.2f}x as far "
                "as the trait "
                f"itself (probe weights {ratio.get('probe', float('nan')):.2f}x): {advice}"
            )
        return "\n".join(lines)

    # -- files -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the probe file atomically (a temporary name, then renamed), with the umask's mode."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: getattr(self, name).detach().float().cpu().contiguous() for name in TENSORS}
        for d, (unit, sigma) in self.directions.items():
            tensors[f"direction_{d}"] = unit.detach().float().cpu().clone()
            tensors[f"sigma_{d}"] = sigma.detach().float().cpu().clone()
        bad = sorted(name for name, t in tensors.items() if not bool(torch.isfinite(t).all()))
        if bad:  # load() refuses such a file, so writing it would only move the error to the user
            raise ProbeFileError(
                f"{path}: not written: {', '.join(bad)} hold NaN or infinite values (degenerate training "
                "data: silent or constant segments?); check the training stems and retrain with `smitin probes train`"
            )
        meta = {**self.meta, "smitin": __version__, "layout": self.layout.fingerprint()}
        # serialised here and written with open(): safetensors' save_file creates the file 0600
        blob = save(tensors, metadata={METADATA_KEY: json.dumps(meta)})
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_bytes(blob)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path, backbone: Backbone | None = None) -> ProbeSet:
        """Read a probe file; with `backbone`, also check that it fits that model."""
        path = Path(path)
        try:
            regular, there = path.is_file(), path.exists()
        except (OSError, ValueError) as err:  # a name too long for the file system, say
            raise ProbeFileError(f"{str(path)[:200]}: not a usable path ({err.__class__.__name__}: "
                                 f"{str(err)[:100]}); give the path of a .safetensors probe file") from None  # fmt: skip
        if there and not regular:
            raise ProbeFileError(f"{path}: not a regular file (a folder, device or pipe); give a probe file")
        if not regular:
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
                extra = {t: f.get_tensor(t) for t in DIRECTION_TENSORS if t in f.keys()}
            meta = json.loads(header[METADATA_KEY])
        except (SafetensorError, OSError, json.JSONDecodeError, RuntimeError) as err:
            raise ProbeFileError(
                f"{path}: not a readable probe file (truncated, damaged or another format: {err}); "
                "re-download it or retrain with `smitin probes train`"
            ) from None
        _validate(path, meta, {**tensors, **extra})
        directions = {
            d: (extra[f"direction_{d}"], extra[f"sigma_{d}"])
            for d in DIRECTIONS
            if f"direction_{d}" in extra and f"sigma_{d}" in extra
        }
        probes = cls(**tensors, meta=meta, directions=directions)
        if backbone is not None:
            probes.check(backbone, path)
        return probes


VECTORS = ("weight", "direction", "mean_pos", "mean_neg", *(f"direction_{d}" for d in DIRECTIONS))
META_TYPES: dict[str, type | tuple[type, ...]] = {
    "trait": str,
    "model": str,
    "weights": str,
    "layout": str,
    "smitin": str,
    "sample_rate": int,
    "segment_seconds": (int, float),
    "positions_per_segment": int,
    "text": (str, type(None)),
    "data": dict,
    "training": dict,
    "accuracy": dict,
}


def _validate(path: Path, meta: Any, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a well-formed file whose content cannot be probes: metadata, dtypes, shapes, values."""

    def bad(problem: str) -> ProbeFileError:
        return ProbeFileError(
            f"{path}: {problem}; the file is damaged or was not written by smitin: "
            "retrain it with `smitin probes train`"
        )

    if not isinstance(meta, dict):
        raise bad(f"its smitin metadata is a JSON {type(meta).__name__}, not an object")
    for name, kind in META_TYPES.items():
        if name in meta and (not isinstance(meta[name], kind) or isinstance(meta[name], bool)):
            kinds = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise bad(f"metadata {name!r} is {meta[name]!r}, not of type {kinds}")
    direction = meta.get("training", {}).get("direction", "probe")
    if direction not in DIRECTIONS:
        raise bad(f"metadata training direction is {direction!r}, not one of {DIRECTIONS}")
    for name, t in tensors.items():
        if not t.is_floating_point():
            raise bad(f"tensor {name!r} is {t.dtype}, not a float tensor")
    w = tensors["weight"]
    if w.dim() != 3 or 0 in w.shape:
        raise bad(f"tensor 'weight' has shape {tuple(w.shape)}, not [layers, heads, head_dim]")
    want = tuple(w.shape)
    declared = re.fullmatch(r"L(\d+)xH(\d+)xD(\d+)", meta.get("layout", HeadLayout(*want).fingerprint()))
    if declared is None or tuple(int(g) for g in declared.groups()) != want:
        raise bad(
            f"metadata layout {meta.get('layout')!r} does not match the tensors' {HeadLayout(*want).fingerprint()}"
        )
    for name, t in tensors.items():
        shape = want if name in VECTORS else want[:2]
        if tuple(t.shape) != shape:
            raise bad(f"tensor {name!r} has shape {tuple(t.shape)}, not {shape} as 'weight' says")
        if not torch.isfinite(t).all():
            raise bad(f"tensor {name!r} holds NaN or infinite values")
    for name, t in tensors.items():
        if t.numel() and float(t.abs().max()) > MAX_VALUE:
            raise bad(
                f"tensor {name!r} holds values up to {float(t.abs().max()):.3g} (at most {MAX_VALUE:g})"
            )
    _check_shift(path, tensors, bad)
    acc = tensors["accuracy"]
    if acc.min() < 0 or acc.max() > 1:
        raise bad(f"accuracies must lie in [0, 1], not [{acc.min():g}, {acc.max():g}]")
    for name in (n for n in tensors if n.startswith("sigma")):
        if tensors[name].min() < 0:
            raise bad(f"tensor {name!r} (a spread) holds negative values")


def _check_shift(path: Path, tensors: dict[str, torch.Tensor], bad) -> None:
    """Refuse directions and spreads whose push could overflow a step at the largest strength.

    A step adds alpha x w x sigma x direction to a head; with |alpha| <= MAX_ALPHA and w <= 1 the
    largest push is MAX_ALPHA x |direction| x sigma, which must stay below MAX_SHIFT: values
    finite in the file (direction x1e38, sigma x1e37) otherwise turn a whole batch's logits into
    NaN, every user's generation with them.
    """
    from .recipes import MAX_ALPHA

    pairs = [("direction", "sigma")] + [(f"direction_{d}", f"sigma_{d}") for d in DIRECTIONS]
    for unit, spread in pairs:
        if unit not in tensors or spread not in tensors:
            continue
        push = tensors[unit].double().norm(dim=-1) * tensors[spread].double() * MAX_ALPHA
        worst = float(push.max())
        if worst > MAX_SHIFT:
            layer, head = divmod(int(push.argmax()), push.shape[1])
            raise bad(
                f"steering along {unit!r} could overflow a step: |direction| x sigma x the largest "
                f"strength ({MAX_ALPHA:g}) reaches {worst:.3g} at layer {layer} head {head} "
                f"(at most {MAX_SHIFT:g})"
            )


def orthogonal_to(v: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """v [..., D] with its component along the unit vectors n [..., D] removed (per head): how the
    denoised direction and `smitin diagnose`'s noise-blind variants are made."""
    return v - (v * n).sum(-1, keepdim=True) * n


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
    noise: torch.Tensor | None = None,
) -> ProbeSet:
    """Train a probe on every head of z [N, L, H, D] (labels 1 = trait present), split by track.

    `direction`: the file's default, "probe" (unit probe weights, the paper's), "mass_mean" (unit
    difference of class means, ITI's) or "denoised" (that difference with its component along
    `noise`, the heads' unit response to broadband noise [L, H, D] from
    `activations.noise_response`, removed; only with `noise`). `chunk` heads are copied and solved
    at a time (a cache-sized block).
    """
    from .holdout import check_split  # here: it brings smitin.data (audio I/O), which steering never needs

    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    if direction == "denoised" and noise is None:
        raise ValueError("the denoised direction needs the heads' noise response (`noise`)")
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    val = torch.from_numpy(check_split(labels, groups, val_fraction=val_fraction, seed=seed))
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
    made = [d for d in DIRECTIONS if d != "denoised" or noise is not None]
    units = {d: torch.empty(groups_n, dim, device=dev) for d in made}
    sigmas = {d: torch.empty(groups_n, device=dev) for d in made}
    if noise is not None:
        noise = noise.to(dev, torch.float32).reshape(groups_n, dim)
        noise = noise / noise.norm(dim=-1, keepdim=True).clamp_min(1e-12)
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
        raws = {"probe": w, "mass_mean": mp - mn}
        if noise is not None:
            nz = noise[g0:g1]
            raws["denoised"] = orthogonal_to(mp - mn, nz)
        for d, raw in raws.items():
            u = raw / raw.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            sigmas[d][g0:g1] = torch.bmm(u[:, None, :], block.transpose(1, 2))[:, 0].std(1)
            units[d][g0:g1] = u
        weight[g0:g1], bias[g0:g1] = w, b
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
    weight, bias, acc, mean_pos, mean_neg = (t.cpu() for t in (weight, bias, acc, mean_pos, mean_neg))
    meta["accuracy"] = {"best": round(float(acc.max()), 4), "median": round(float(acc.median()), 4)}
    shape = (layers, heads)
    directions = {d: (units[d].cpu().reshape(*shape, dim), sigmas[d].cpu().reshape(shape)) for d in made}
    return ProbeSet(
        weight.reshape(*shape, dim),
        bias.reshape(shape),
        acc.reshape(shape),
        *directions[direction],
        mean_pos.reshape(*shape, dim),
        mean_neg.reshape(*shape, dim),
        meta,
        directions,
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
    from .activations import NOISE_LEVEL, extract, noise_response
    from .holdout import check_split

    summary = getattr(segments, "summary", {}) or {}
    check_split(  # before extracting: too few tracks fail now, not after minutes of work
        segments.labels(),
        segments.groups(),
        val_fraction=train_options.get("val_fraction", 0.2),
        seed=train_options.get("seed", 0),
        source=str(summary.get("root") or "the data"),
        unit="clips" if summary.get("layout") == "folders" else "tracks",
    )
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
    noise = noise_response(
        backbone, segments, last=last, text=text, seed=train_options.get("seed", 0), batch_size=batch_size
    )
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
        # what the denoised direction is blind to
        "noise_response": {"colour": "white", "level_x_rms": NOISE_LEVEL, "segments": noise.segments},
    }
    if backbone.device.type != "cpu":  # train where the model runs: all heads in one block
        z = z.to(backbone.device)
        train_options.setdefault("chunk", z.shape[1] * z.shape[2])
    probes = train(
        z, labels, groups, meta=meta, noise=noise.unit if noise.segments else None, **train_options
    )
    if noise.segments:
        probes.meta["noise_response"]["vs_trait"] = probes.noise_vs_trait(noise.shift)
    return probes


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
        every = set(DIRECTIONS) <= set(probes.directions)  # older files lack the denoised one
        if probes.meta.get("weights") == backbone.weights_digest() and same_data and every:
            return probes
    cache = Path(cache_dir) if cache_dir is not None else out.with_suffix(".cache")
    probes = fit(backbone, segments, cache_dir=cache, **fit_options)
    probes.save(out)
    return probes
