"""Throughput of mixed batches: N requests with their own steering in one `generate_mixed` call
against the same N requests one at a time (each a `generate_mixed` of one), interleaved, repeated.

Each request steers one or two of four traits with its own strength, head mode, monitor and seed
(the mix the studio and the experiment produce). Reported: requests per second both ways and
their paired ratio (median and spread over repetitions). Targets (issue 17): >= 4x for 8
requests on the bundled model on CPU; >= 10x for 32 requests on a GPU.

    nice -n 10 python benchmarks/bench_batch.py                   # bundled + musicgen-small (random), CPU
    nice -n 10 python benchmarks/bench_batch.py --quick
    python benchmarks/bench_batch.py --models small,medium,large --device cuda --dtype float16 --sizes 8,32
"""

from __future__ import annotations

import argparse
import random

import torch
from _common import Samples, machine, ratio_spread, table, timed, verdict
from bench_generate import calibrate, make_probes

from smitin import architectures
from smitin.backbone import Backbone, load
from smitin.mixed import Request, generate_mixed
from smitin.steering import Steer

TRAITS = ("drums", "bass", "guitar", "piano")
TARGET = {("cpu", 8): 4.0, ("cuda", 32): 10.0}


def requests(backbone: Backbone, n: int, seed: int = 0) -> list[Request]:
    """N requests, each its own mix of traits, signs, head modes, monitors and seeds."""
    rng = random.Random(seed)
    probes = [make_probes(backbone.layout, t, i) for i, t in enumerate(TRAITS)]
    out = []
    for i in range(n):
        chosen = rng.sample(probes, rng.choice((1, 2)))
        steers = [
            Steer(
                p,
                alpha=rng.choice((-1, 1)) * rng.choice((2.0, 5.0, 10.0)),
                heads=rng.choice(("soft", 16)),
                monitor=rng.random() < 0.7,
                threshold=0.6,
                direction="probe",  # the random probes of bench_generate hold one direction
            )
            for p in chosen
        ]
        out.append(Request(None, steers, seed=i))
    return out


def bench(
    backbone: Backbone, n: int, seconds: float, reps: int, sync
) -> tuple[float, float, float, float, float]:
    reqs = requests(backbone, n)
    batched, alone = Samples(), Samples()
    generate_mixed(backbone, reqs[:2], duration=seconds, progress=False)  # warm-up
    for _ in range(reps):
        timed(lambda: generate_mixed(backbone, reqs, duration=seconds, progress=False), batched, sync)
        timed(
            lambda: [generate_mixed(backbone, [r], duration=seconds, progress=False) for r in reqs],
            alone,
            sync,
        )
    ratio, lo, hi = ratio_spread(alone.wall, batched.wall)
    return n / batched.median(), n / alone.median(), ratio, lo, hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models", default="bundled,small", help="bundled and/or random shapes: small,medium,large"
    )
    ap.add_argument("--sizes", default="8,32", help="requests per batch")
    ap.add_argument("--seconds", type=float, default=1.0, help="seconds of audio per request")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="one repetition, 0.5 s, sizes 8")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.reps, args.seconds, args.sizes = 1, 0.5, "8"
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    print(machine())
    rows = []
    for name in args.models.split(","):
        if name == "bundled":
            backbone = load("bundled", device=args.device, dtype=args.dtype)
        else:
            backbone = architectures.build(name, device=args.device)
            if args.dtype:
                backbone.model.to(getattr(torch, args.dtype))
        calibrate(backbone)
        for n in (int(s) for s in args.sizes.split(",")):
            batched, alone, ratio, lo, hi = bench(backbone, n, args.seconds, args.reps, sync)
            target = TARGET.get((args.device.split(":")[0], n))
            mark = f">= {target:g} {verdict(ratio, target, higher_is_better=True)}" if target else ""
            if name != "bundled" and args.device == "cpu":
                mark = f"({mark} is set for the bundled model)" if mark else ""
            rows.append([f"{name} ({backbone.layout.fingerprint()})", n, f"{batched:.2f}", f"{alone:.2f}",
                         f"**{ratio:.2f}x** ({lo:.2f}-{hi:.2f})", mark])  # fmt: skip
            print(rows[-1], flush=True)
    print()
    print(table(rows, ["model", "requests", "req/s batched", "req/s one at a time", "speed-up", "target"]))


if __name__ == "__main__":
    main()
