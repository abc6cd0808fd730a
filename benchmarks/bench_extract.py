"""Activation extraction vs a plain teacher-forced forward pass, and peak memory as clips grow.

1. `smitin.activations.capture` (hooks on every layer's `out_proj`, last position copied out) vs
   the same teacher-forced `model(...)` call without hooks, on the same batch of codes; the two
   alternate over repetitions and the median of the paired ratios is reported (target <= 1.05).
2. `smitin.activations.extract` with the fp16 shard cache over growing numbers of clips, each size
   in a fresh process so its peak RSS (`resource.ru_maxrss`) is its own (target: flat, apart from
   the returned activations themselves, which are reported).

    nice -n 10 python benchmarks/bench_extract.py           # bundled model + musicgen-small (random)
    nice -n 10 python benchmarks/bench_extract.py --quick
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from _common import Samples, machine, ratio_spread, table, timed, verdict

from smitin import architectures
from smitin.activations import capture, extract
from smitin.backbone import load

TARGET_TIME = 1.05
TARGET_RSS = 1.10  # peak RSS at the most clips / at the fewest, after subtracting the result


def backbone_for(name: str):
    return load() if name == "bundled" else architectures.build(name)


class Clips:
    """A SegmentSource of random noise clips: extraction cost does not depend on the audio."""

    trait = "bench"
    seconds = 3.0

    def __init__(self, n: int, sample_rate: int) -> None:
        self.n, self.sample_rate = n, sample_rate

    def __len__(self) -> int:
        return self.n

    def load(self, indices) -> np.ndarray:
        rng = np.random.default_rng(indices[0])
        return 0.1 * rng.standard_normal((len(indices), int(self.seconds * self.sample_rate))).astype(
            np.float32
        )

    def fingerprint(self) -> str:
        return f"noise-{self.n}"

    def labels(self) -> np.ndarray:
        return np.arange(self.n) % 2

    def groups(self) -> list[str]:
        return [f"t{i // 4}" for i in range(self.n)]


def time_capture(name: str, batch: int, reps: int) -> list:
    backbone = backbone_for(name)
    clips = Clips(batch, backbone.sample_rate)
    codes = backbone.encode(torch.from_numpy(clips.load(list(range(batch)))))
    ids = backbone.delayed_input_ids(codes)
    cond = backbone.null_condition(batch)
    plain, hooked = Samples(), Samples()

    def forward():
        with torch.no_grad():
            backbone.model(**cond, decoder_input_ids=ids, use_cache=False)

    forward()
    capture(backbone, codes)  # warm-up
    for rep in range(reps):
        pair = [(plain, forward), (hooked, lambda: capture(backbone, codes))]
        for into, fn in pair if rep % 2 == 0 else pair[::-1]:
            timed(fn, into)
    r, lo, hi = ratio_spread(hooked.cpu, plain.cpu)
    rw = ratio_spread(hooked.wall, plain.wall)[0]
    return [
        name,
        f"{batch} x {codes.shape[-1]} frames",
        f"{plain.median('cpu'):.3f}",
        f"{hooked.median('cpu'):.3f}",
        f"{r:.3f} ({lo:.3f}-{hi:.3f})",
        f"{rw:.3f}",
        f"<={TARGET_TIME} {verdict(r, TARGET_TIME)}",
    ]


def child_rss(name: str, clips: int, batch: int) -> dict:
    """In a fresh process: extract `clips` clips through the shard cache; peak RSS before and after."""
    backbone = backbone_for(name)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        acts = extract(
            backbone, Clips(clips, backbone.sample_rate), batch_size=batch, cache_dir=tmp, progress=False
        )
        seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = acts.z.numel() * acts.z.element_size() / 1024
    return {"base_kb": base, "peak_kb": peak, "result_kb": result, "seconds": seconds}


def rss_growth(name: str, sizes: list[int], batch: int) -> tuple[list, float]:
    rows, extra = [], []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, str(n), str(batch)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        grown = (r["peak_kb"] - r["base_kb"] - r["result_kb"]) / 1024
        extra.append(max(grown, 1e-3))
        rows.append(
            [
                name,
                n,
                f"{r['base_kb'] / 1024:.0f}",
                f"{r['peak_kb'] / 1024:.0f}",
                f"{r['result_kb'] / 1024:.2f}",
                f"{grown:.1f}",
                f"{r['seconds']:.1f}",
            ]
        )
    growth = (extra[-1] + 64) / (extra[0] + 64)  # +64 MB: ignore noise in tiny absolute numbers
    return rows, growth


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        torch.set_num_threads(1)
        print(json.dumps(child_rss(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="bundled,small")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--clips", default="16,64,256", help="clip counts for the memory test (bundled model)")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared machine)"
    )
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.models, args.reps, args.clips = "bundled", 3, "16,64"
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    print(f"machine: {machine()}")
    rows = []
    for name in args.models.split(","):
        rows.append(time_capture(name, args.batch if name == "bundled" else 2, args.reps))
        print(f"  timed {name}", flush=True)
    sizes = [int(c) for c in args.clips.split(",")]
    mem, growth = rss_growth("bundled", sizes, args.batch)
    print()
    print(
        table(
            rows,
            ["model", "batch", "forward CPU s", "capture CPU s", "ratio CPU (spread)", "wall", "target"],
        )
    )
    print()
    print(
        table(
            mem,
            [
                "model",
                "clips",
                "RSS after load MB",
                "peak RSS MB",
                "result MB",
                "growth - result MB",
                "seconds",
            ],
        )
    )
    print(
        f"\nmemory growth, most vs fewest clips (+64 MB floor): {growth:.2f}x, target <= {TARGET_RSS} "
        f"{verdict(growth, TARGET_RSS)} (flat)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
