"""Shared helpers for the benchmark scripts: machine description, timers, result tables.

Wall-clock time on a shared machine swings 2x from run to run, so every script interleaves the
variants it compares, repeats them, and reports medians with the spread (min-max).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch


def machine() -> str:
    """One line naming the CPU, cores, load and library versions the numbers came from."""
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    import transformers

    return (
        f"{model}, nproc {len(os.sched_getaffinity(0))}, load {load} (1/5/15 min), {gpu}; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
        f"python {platform.python_version()}"
    )


@dataclass
class Samples:
    """Repeated timings of one variant, in seconds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def median(self, kind: str = "wall") -> float:
        return statistics.median(getattr(self, kind))

    def spread(self, kind: str = "wall") -> str:
        v = getattr(self, kind)
        return f"{min(v):.4g}-{max(v):.4g}"


def timed(fn: Callable[[], object], into: Samples, sync: Callable[[], None] | None = None) -> object:
    """Run fn once, appending its wall and process-CPU seconds to `into`."""
    if sync:
        sync()
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    if sync:
        sync()
    into.wall.append(time.perf_counter() - w)
    into.cpu.append(time.process_time() - c)
    return out


def ratio_spread(num: Sequence[float], den: Sequence[float]) -> tuple[float, float, float]:
    """Median, min and max of the per-repetition ratios num[i] / den[i] (paired, same repetition)."""
    r = [a / b for a, b in zip(num, den, strict=True)]
    return statistics.median(r), min(r), max(r)


def verdict(value: float, target: float, higher_is_better: bool = False) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


def table(rows: list[Sequence[object]], header: Sequence[str]) -> str:
    """A plain fixed-width text table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
