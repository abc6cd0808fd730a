"""Batched probe training (`smitin.probes.train`) vs a per-head scikit-learn loop, same activations.

Data: random but class-separable 64-dim head activations (fp16, like the activation cache) with
track groups: each head gets its own scale, axis and class separation (accuracies from chance to
~0.95), plus a per-track offset so a by-track split matters. Both sides solve the same problem,
scikit-learn's default `LogisticRegression(C=1)` per head on the training tracks; accuracy is on
the held-out tracks. scikit-learn runs on an evenly spaced subset of heads and its time is
extrapolated to all heads (said in the output). Variants alternate within each repetition.

    nice -n 10 python benchmarks/bench_probes.py            # small/medium/large x 2000/8000
    nice -n 10 python benchmarks/bench_probes.py --quick    # small x 2000 only
    python benchmarks/bench_probes.py --device cuda          # batched probes on a GPU (all heads in one
                                                             # block), scikit-learn on one CPU core; wall time
"""

from __future__ import annotations

import argparse
import sys
import warnings
from functools import partial

import numpy as np
import torch
from _common import Samples, machine, ratio_spread, table, timed, verdict

from smitin.probes import split_by_group, train

LAYOUTS = {"small": (24, 16), "medium": (48, 24), "large": (48, 32)}
TARGET_SPEED = 50.0
TARGET_ACC = 0.005


def make_data(n: int, layers: int, heads: int, dim: int = 64, tracks: int = 50, seed: int = 0):
    """z [n, L, H, D] fp16, labels [n], track names [n]."""
    gen = torch.Generator().manual_seed(seed)
    g = layers * heads
    track = torch.arange(n) * tracks // n
    y = (torch.rand(n, generator=gen) < 0.5).long()
    z = torch.empty(n, g, dim, dtype=torch.float16)
    sign = (2 * y - 1).float()[:, None, None]
    for g0 in range(0, g, 64):  # in blocks: bounded float32 temporaries
        k = min(64, g - g0)
        axis = torch.randn(k, dim, generator=gen)
        axis /= axis.norm(dim=1, keepdim=True)
        strength = 1.6 * torch.rand(k, 1, generator=gen) ** 2  # most heads weak, a few strong
        scale = 0.5 + 2.5 * torch.rand(k, dim, generator=gen)
        offset = 0.5 * torch.randn(tracks, k, dim, generator=gen)
        block = torch.randn(n, k, dim, generator=gen) * scale + offset[track] + sign * strength * axis
        z[:, g0 : g0 + k] = block + torch.randn(k, dim, generator=gen)
    return z.reshape(n, layers, heads, dim), y.numpy(), [f"t{i}" for i in track.tolist()]


def sklearn_heads(z, y, val, heads: list[int]) -> list[tuple[float, int]]:
    """Per-head scikit-learn fit on training tracks; (validation accuracy, iterations) per head."""
    from sklearn.linear_model import LogisticRegression

    flat = z.reshape(z.shape[0], -1, z.shape[-1])
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs hits max_iter on some heads; counted below
        for h in heads:
            x = flat[:, h].float().numpy()
            clf = LogisticRegression(C=1.0).fit(x[~val], y[~val])
            out.append((clf.score(x[val], y[val]), int(clf.n_iter_[0])))
    return out


def run_config(name: str, n: int, reps: int, sk_heads: int, device: str = "cpu") -> tuple[list, bool]:
    """Time one layout x sample count; returns its table row and whether both targets hold.

    On a GPU the activations start there (where a GPU model's capture leaves them), all heads are one
    block, and the comparison is wall time (process CPU time does not count GPU work).
    """
    layers, heads = LAYOUTS[name]
    g = layers * heads
    z, y, groups = make_data(n, layers, heads)
    val = split_by_group(groups, 0.2, 0)
    ours, theirs = Samples(), Samples()
    sk_scale, results = [], []
    gpu = device != "cpu"
    zd = z.to(device)
    fit = partial(train, zd, y, groups, chunk=g) if gpu else partial(train, z, y, groups)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    if gpu:
        fit()  # warm-up: kernels, cuBLAS/cuSOLVER handles
    for rep in range(reps):
        probes = timed(fit, ours, sync)
        pick = [int(i) for i in np.linspace(rep, g - 1, sk_heads).round()]
        results.append((pick, timed(partial(sklearn_heads, z, y, val, pick), theirs)))
        sk_scale.append(g / len(pick))
    for kind in ("cpu", "wall"):  # scikit-learn's subset time -> all heads
        setattr(theirs, kind, [t * s for t, s in zip(getattr(theirs, kind), sk_scale, strict=True)])
    acc = probes.accuracy.flatten()
    diffs = [abs(float(acc[h]) - a) for pick, res in results for h, (a, _) in zip(pick, res, strict=True)]
    capped = sum(it >= 100 for _, res in results for _, it in res)
    fits = sum(len(res) for _, res in results)
    kind = "wall" if gpu else "cpu"
    speed, lo, hi = ratio_spread(getattr(theirs, kind), getattr(ours, kind))
    speed_wall = ratio_spread(theirs.wall, ours.wall)[0]
    dacc = float(np.mean(diffs))
    print(
        f"  {name} x {n}: smitin {ours.median(kind):.3f} s {kind} ({device}), scikit-learn "
        f"{theirs.median(kind):.1f} s (extrapolated from {sk_heads} of {g} heads)",
        flush=True,
    )
    row = [
        f"{name} ({g} heads)",
        n,
        f"{ours.median(kind):.3f} ({ours.spread(kind)})",
        f"{theirs.median(kind):.1f} ({theirs.spread(kind)})",
        f"{speed:.0f}x ({lo:.0f}-{hi:.0f})",
        f"{speed_wall:.0f}x",
        f"{100 * dacc:.2f} / {100 * max(diffs):.2f}",
        f"{capped}/{fits}",
        f"{verdict(speed, TARGET_SPEED, True)} / {verdict(dacc, TARGET_ACC)}",
    ]
    return row, speed >= TARGET_SPEED and dacc <= TARGET_ACC


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small layout x 2000 samples, 2 repetitions")
    ap.add_argument("--layouts", default="small,medium,large")
    ap.add_argument("--samples", default="2000,8000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sk-heads", type=int, default=24, help="heads scikit-learn fits per repetition")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: both sides on one core)"
    )
    ap.add_argument("--device", default="cpu", help="where smitin's probes train (cuda: wall-time ratio)")
    args = ap.parse_args(argv)
    if args.quick:
        args.layouts, args.samples, args.reps, args.sk_heads = "small", "2000", 2, 16
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)  # numpy/scipy BLAS under scikit-learn: same core count
    except ImportError:
        pass
    print(f"machine: {machine()}")
    clock = (
        "process CPU seconds (robust to other jobs on a shared machine) and wall seconds"
        if args.device == "cpu"
        else f"wall seconds (smitin on {args.device}, synchronised; scikit-learn on the CPU)"
    )
    print(
        f"timing: {clock}; {args.reps} repetitions, variants alternating; scikit-learn on {args.sk_heads} "
        "evenly spaced heads per repetition, extrapolated to all heads"
    )
    rows, ok = [], True
    for name in args.layouts.split(","):
        for n in (int(s) for s in args.samples.split(",")):
            row, good = run_config(name, n, args.reps, args.sk_heads, args.device)
            rows.append(row)
            ok &= good
    print()
    unit = "CPU" if args.device == "cpu" else "wall"
    print(
        table(
            rows,
            [
                "layout",
                "samples",
                f"smitin {unit} s (min-max)",
                f"sklearn {unit} s, all heads (extrap.)",
                f"speed-up {unit} (spread)",
                "wall",
                "|d acc| mean / max (points)",
                "sklearn at max_iter",
                f"target >={TARGET_SPEED:.0f}x / <={100 * TARGET_ACC:.1f} pt",
            ],
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
