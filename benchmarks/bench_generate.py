"""Steering overhead: plain `generate` vs capture-only hooks vs steering vs monitored steering.

Two measurements, because end-to-end wall-clock ratios on a shared machine swing by 2x run to run:

1. The direct cost of the hook code: `Steering.on_heads` called on realistic tensors (CFG rows,
   one new position, every layer of a step) in a tight loop, against a no-op hook; reported per
   layer call and per step, and as a fraction of a plain generation step. This is the number the
   targets are judged on.
2. End-to-end `model.generate`, same seed and length, the variants interleaved run by run over
   several repetitions; medians of the paired per-repetition ratios, with their spread.

Also checked: the hook path makes no host-device synchronisation (CUDA: `set_sync_debug_mode`;
everywhere: `.item()`, `.tolist()`, `bool()`/`float()`/`int()` of a tensor raise while it runs) and
allocates no tensor per head (tensor ops per layer call do not grow with the head count).

    nice -n 10 python benchmarks/bench_generate.py            # bundled + musicgen-small (random), CPU
    nice -n 10 python benchmarks/bench_generate.py --quick    # fewer steps/repetitions
    python benchmarks/bench_generate.py --models small --device cuda --dtype float16
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from _common import Samples, machine, ratio_spread, table, timed, verdict

from smitin import architectures
from smitin.activations import capture
from smitin.backbone import Backbone, HeadLayout, load
from smitin.probes import ProbeSet
from smitin.steering import Steer, Steering, apply

TRAITS = ("drums", "bass", "guitar", "piano")
TARGET = {"cpu": 1.01, "cuda": 1.02}


SIGMA: dict[str, torch.Tensor] = {}  # layout -> per-head activation spread, set by `calibrate`


def calibrate(backbone: Backbone) -> None:
    """Per-head spread of real activations: random probes with sigma = 1 would blow the activations
    up, and softmax over huge scores hits denormal floats, slowing the steered run for reasons that
    have nothing to do with the hook."""
    lay = backbone.layout
    codes = torch.randint(0, 2048 if lay.head_dim == 64 else 64, (1, backbone.num_codebooks, 100))
    codes = codes.clamp_max(backbone.model.config.decoder.vocab_size - 1)
    z = capture(backbone, codes.to(backbone.device), last=100).float()[0]  # [T, L, H, D]
    SIGMA[lay.fingerprint()] = z.std(0).mean(-1).cpu()  # [L, H]


def make_probes(layout: HeadLayout, trait: str, seed: int) -> ProbeSet:
    """Random but valid probes (accuracies in [0.5, 0.9]): steering cost does not depend on values."""
    g = torch.Generator().manual_seed(seed)
    shape = (layout.layers, layout.heads, layout.head_dim)
    w = torch.randn(shape, generator=g) / layout.head_dim**0.5
    return ProbeSet(
        weight=w,
        bias=torch.zeros(shape[:2]),
        accuracy=0.5 + 0.4 * torch.rand(shape[:2], generator=g),
        direction=w / w.norm(dim=-1, keepdim=True),
        sigma=SIGMA.get(layout.fingerprint(), torch.ones(shape[:2])),
        mean_pos=torch.zeros(shape),
        mean_neg=torch.zeros(shape),
        meta={"trait": trait, "model": "bench"},
    )


# at 50 frames/s: 3 steps removed, 3 free, 4 added (crossfading over 2 steps), then constant
LANE = "0-0.06:remove,0.06-0.12:free,0.12-0.2:add,ramp=0.04"


def steers(layout: HeadLayout, traits: int, monitor: bool, lanes: bool = False) -> list[Steer]:
    return [
        Steer(
            make_probes(layout, t, i),
            alpha=5.0,
            monitor=monitor,
            direction="probe",  # cost: any direction
            lane=LANE if lanes else None,
        )
        for i, t in enumerate(TRAITS[:traits])
    ]


EVERY = 1  # steering schedule of every measurement (--every); smitin's recipe edits every step

VARIANTS = {  # name -> (traits, monitor, lanes); None = no steering
    "plain": None,
    "capture": None,
    "steer": (1, False, False),
    "monitor-1": (1, True, False),
    "monitor-4": (4, True, False),
    "lanes-4": (4, True, True),  # each trait follows a lane (`LANE`): per-step rows indexed on the device
}


@dataclass
class FakeBackbone:
    """What `Steering` reads from a backbone: lets the hook be timed at any head layout."""

    layout: HeadLayout
    device: torch.device
    dtype: torch.dtype
    name: str = "bench"
    frame_rate: float = 50.0


# -- 1. direct hook cost ---------------------------------------------------------------------------
def hook_cost(fake: FakeBackbone, variant: str, steps: int, rows: int = 2) -> float:
    """Seconds per step spent in the hook (all layers), averaged over `steps` steps (schedule: EVERY)."""
    lay = fake.layout
    xs = [torch.randn(rows, 1, lay.width, device=fake.device, dtype=fake.dtype) for _ in range(8)]
    sync = torch.cuda.synchronize if fake.device.type == "cuda" else (lambda: None)
    if VARIANTS[variant] is None:

        def noop(_layer: int, _x: torch.Tensor) -> None:
            return None

        fn = noop
        state = None
    else:
        state = Steering(fake, steers(lay, *VARIANTS[variant]), every=EVERY, cfg=True, max_steps=steps + 2)
        fn = state.on_heads
        for layer in range(lay.layers):  # the prefill: starts a generation
            state.past = 0
            fn(layer, xs[0])
    sync()
    t = time.perf_counter()
    for step in range(1, steps + 1):
        if state is not None:
            state.past = step
        x = xs[step % 8]
        for layer in range(lay.layers):
            fn(layer, x)
    sync()
    return (time.perf_counter() - t) / steps


@contextlib.contextmanager
def no_host_sync() -> Iterator[None]:
    """Make every way of pulling a tensor value to the host raise, for the block's duration."""

    def refuse(*_a, **_k):
        raise AssertionError("host-device synchronisation on the steering hot path")

    names = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy", "cpu")
    saved = {n: getattr(torch.Tensor, n) for n in names}
    for n in names:
        setattr(torch.Tensor, n, refuse)
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.Tensor, n, f)


def check_no_sync(fake: FakeBackbone, lanes: bool = False) -> str:
    """Run 12 steps of 4 monitored traits (each on a lane: `LANE`) with host reads forbidden (and CUDA sync
    debug on)."""
    lay = fake.layout
    state = Steering(fake, steers(lay, 4, True, lanes), every=EVERY, cfg=True, max_steps=20)
    x = torch.randn(2, 1, lay.width, device=fake.device, dtype=fake.dtype)
    cuda = fake.device.type == "cuda"
    for layer in range(lay.layers):
        state.past = 0
        state.on_heads(layer, x)  # prefill allocates the step buffers: outside the check
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
    try:
        with no_host_sync():
            for step in range(1, 13):
                state.past = step
                for layer in range(lay.layers):
                    state.on_heads(layer, x)
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode("default")
    return "none (CUDA sync debug + host reads forbidden)" if cuda else "none (host reads forbidden)"


def ops_per_call(fake: FakeBackbone) -> float:
    """Tensor ops (each may allocate) per layer call, 4 monitored traits, averaged over 10 steps."""
    from torch.profiler import ProfilerActivity, profile

    lay = fake.layout
    state = Steering(fake, steers(lay, 4, True), every=EVERY, cfg=True, max_steps=20)
    x = torch.randn(2, 1, lay.width, device=fake.device, dtype=fake.dtype)
    for layer in range(lay.layers):
        state.past = 0
        state.on_heads(layer, x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for step in range(1, 11):
            state.past = step
            for layer in range(lay.layers):
                state.on_heads(layer, x)
    top = [e for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None]
    return len(top) / (10 * lay.layers)


# -- 2. end to end ---------------------------------------------------------------------------------
@contextlib.contextmanager
def variant_hooks(backbone: Backbone, variant: str, steps: int) -> Iterator[None]:
    spec = VARIANTS[variant]
    if variant == "plain":
        yield
    elif variant == "capture":
        lay = backbone.layout
        buf = torch.empty(lay.layers, 2, lay.width, device=backbone.device, dtype=backbone.dtype)

        def read(layer: int, x: torch.Tensor) -> None:
            buf[layer, : x.shape[0]].copy_(x[:, -1])

        with backbone.head_hooks(read):
            yield
    else:
        with apply(backbone, steers(backbone.layout, *spec), every=EVERY, cfg=True, max_steps=steps + 2):
            yield


def end_to_end(backbone: Backbone, steps: int, reps: int) -> tuple[dict[str, Samples], dict[str, list]]:
    """Whole generations (wall) and per-step decoder forward times, variants rotated run by run."""
    times = {v: Samples() for v in VARIANTS}
    per_step: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cond = backbone.null_condition(1)
    cuda = backbone.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else None
    kwargs = {"do_sample": True, "max_new_tokens": steps, "guidance_scale": 3.0}
    clock: list[float] = []

    def start(*_a, **_k) -> None:
        if cuda:
            torch.cuda.synchronize()
        clock.append(time.perf_counter())

    def stop(*_a, **_k) -> None:
        if cuda:
            torch.cuda.synchronize()
        clock.append(time.perf_counter() - clock.pop())

    stack = backbone.decoder_stack  # timing hooks first, so the steering's own pre-hook is inside
    handles = [stack.register_forward_pre_hook(start, with_kwargs=True), stack.register_forward_hook(stop)]
    try:
        with torch.no_grad():
            backbone.model.generate(**cond, **{**kwargs, "max_new_tokens": 4})  # warm-up
            order = list(VARIANTS)
            for rep in range(reps):
                for v in order[rep % len(order) :] + order[: rep % len(order)]:  # rotate who goes first
                    with variant_hooks(backbone, v, steps):
                        torch.manual_seed(0)
                        clock.clear()
                        timed(lambda: backbone.model.generate(**cond, **kwargs), times[v], sync)
                        per_step[v] += clock[2:]  # skip the two prefill passes
    finally:
        for h in handles:
            h.remove()
    return times, per_step


def run_model(name: str, args) -> list[list]:
    dtype = getattr(torch, args.dtype) if args.dtype else None
    t = time.perf_counter()
    if name == "bundled":
        backbone = load(device=args.device, dtype=dtype)
    else:
        backbone = architectures.build(name, device=args.device)
        if dtype:
            backbone.model.to(dtype)
    print(
        f"\n== {name}: {backbone.layout.fingerprint()} on {args.device} {backbone.dtype} "
        f"(built in {time.perf_counter() - t:.0f} s)",
        flush=True,
    )
    steps = args.steps or (150 if name == "bundled" else 40)
    reps = args.reps or (5 if name == "bundled" else 3)
    if args.quick:
        steps, reps = max(10, steps // 3), max(2, reps - 2)
    calibrate(backbone)
    fake = FakeBackbone(backbone.layout, backbone.device, backbone.dtype)
    cost = {
        v: statistics.median(hook_cost(fake, v, 200) for _ in range(5)) for v in VARIANTS if v != "capture"
    }
    times, per_step = end_to_end(backbone, steps, reps)
    step_median = {v: statistics.median(t) for v, t in per_step.items()}
    target = TARGET["cuda" if backbone.device.type == "cuda" else "cpu"]
    step_ms = 1000 * times["plain"].median() / steps
    rows = []
    for v in VARIANTS:
        e2e, lo, hi = ratio_spread(times[v].wall, times["plain"].wall)
        fwd = step_median[v] / step_median["plain"]
        hook_us = 1e6 * (cost.get(v, cost["plain"]) - cost["plain"])
        direct = 1 + hook_us / 1000 / step_ms
        judged = v == "monitor-4"
        rows.append(
            [
                name,
                v,
                f"{1000 * times[v].median() / steps:.2f}",
                f"{1000 * step_median[v]:.2f}",
                f"{fwd:.3f}",
                f"{e2e:.3f} ({lo:.3f}-{hi:.3f})",
                "-" if v in ("plain", "capture") else f"{hook_us / backbone.layout.layers:.1f}",
                "-" if v in ("plain", "capture") else f"{hook_us:.0f}",
                "-" if v in ("plain", "capture") else f"{direct:.4f}",
                f"<={target}: direct {verdict(direct, target)}, step {verdict(fwd, target)}"
                if judged
                else "",
            ]
        )
    print(
        f"   plain step {step_ms:.1f} ms ({steps} steps x {reps} reps); host sync: {check_no_sync(fake)}, "
        f"with lanes {check_no_sync(fake, lanes=True)}; "
        f"tensor ops per layer call (4 traits): {ops_per_call(fake):.1f}",
        flush=True,
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models", default="bundled,small", help="bundled and/or architectures: tiny, small, medium, large"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="e.g. float16 on a GPU")
    ap.add_argument(
        "--steps", type=int, default=0, help="new tokens per generation (default 150 bundled, 40 others)"
    )
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 5 bundled, 3 others)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: steadier on a shared machine; 0 = torch default)",
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--every",
        type=int,
        default=1,
        help="steering schedule measured (default 1, smitin's recipe; 5 is the paper's, edits 1 step in 5)",
    )
    args = ap.parse_args(argv)
    global EVERY
    EVERY = args.every
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    print(f"machine: {machine()}")
    rows = []
    for name in args.models.split(","):
        rows += run_model(name, args)
    # the hook cost at the larger layouts, without building those models
    extra = []
    for arch in ("medium", "large"):
        hidden, layers, heads = architectures.DECODERS[arch]
        fake = FakeBackbone(
            HeadLayout(layers, heads, hidden // heads),
            torch.device(args.device),
            getattr(torch, args.dtype) if args.dtype else torch.float32,
        )
        base = statistics.median(hook_cost(fake, "plain", 100) for _ in range(3))
        for v in ("steer", "monitor-4"):
            c = statistics.median(hook_cost(fake, v, 100) for _ in range(3)) - base
            extra.append([arch, fake.layout.fingerprint(), v, f"{1e6 * c / layers:.1f}", f"{1e6 * c:.0f}"])
    print()
    print(
        table(
            rows,
            [
                "model",
                "variant",
                "ms/generation step",
                "decoder fwd ms (median)",
                "fwd ratio",
                "whole-run ratio (spread)",
                "hook us/layer call",
                "hook us/step",
                "direct ratio",
                "target (monitor-4)",
            ],
        )
    )
    print("\nhook cost at other layouts (no model built):")
    print(table(extra, ["arch", "layout", "variant", "us/layer call", "us/step"]))
    print(
        "\ndirect ratio = 1 + (hook time per step - no-op hook per step) / plain step time. fwd ratio = median "
        "decoder forward time per step (all steps of all repetitions) / plain's: robust to other jobs' bursts. "
        "whole-run ratio = median of per-repetition paired wall ratios of whole generations (min-max): on a "
        "shared machine this one swings by tens of percent and is shown for completeness."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
