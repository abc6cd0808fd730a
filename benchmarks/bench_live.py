"""Latency of the live stream (`smitin.stream`), with 4 monitored traits (random probes of the model's shape).

Measured, each over repetitions (median and range):
  first chunk   Generate -> the first audible chunk handed out (goal <= 1 s)
  control       a strength change posted -> the step it took effect at, and -> the first audio chunk
                that contains that step (goal <= 0.5 s each), in a stream paced `--ahead` s ahead
                of a listener; a listener hears the change about `--ahead` s after the chunk
  real time     seconds of audio per second of wall time, streaming unpaced, chunk decoding
                included (goal >= 2x)
  underruns     over an endless run of `--endless` seconds, paced: a player starting at the first
                chunk starves whenever a chunk arrives after its play time (goal 0)

    nice -n 10 python benchmarks/bench_live.py                  # bundled model, CPU: about 3 min
    nice -n 10 python benchmarks/bench_live.py --quick
    nice -n 10 python benchmarks/bench_live.py --engine captured  # the captured step on CPU
    python benchmarks/bench_live.py --shape musicgen-small --device cuda   # random weights, on a GPU
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import machine, table, verdict
from bench_generate import TRAITS, calibrate, make_probes

from smitin import architectures
from smitin.backbone import Backbone, load
from smitin.captured import resolve
from smitin.options import ENGINES
from smitin.steering import Steer
from smitin.stream import Stream, stream

SHAPES = {"bundled": None, "musicgen-small": "small"}


def steers(backbone: Backbone) -> list[Steer]:
    """Four monitored traits, pushed on their 16 best heads (smitin's recipe), threshold 0.6."""
    calibrate(backbone)
    return [
        Steer(make_probes(backbone.layout, t, i), alpha=5.0, threshold=0.6, direction="probe")
        for i, t in enumerate(TRAITS)
    ]


def first_chunk(backbone: Backbone, four: list[Steer], reps: int, engine: str = "auto") -> list[float]:
    """Seconds from the call to the first chunk, the model loaded and warm."""
    out = []
    for rep in range(reps):
        t0 = time.perf_counter()
        live = stream(backbone, None, four, duration=5.0, seed=rep, engine=engine)
        for chunk in live:
            out.append(chunk.at - t0)
            live.stop()
            break
        for _ in live:  # the rest after Stop
            pass
    return out


def control(
    backbone: Backbone, four: list[Steer], reps: int, ahead: float, engine: str = "auto"
) -> tuple[list[float], list[float]]:
    """Seconds from a posted change to its step, and to the first chunk holding that step."""
    to_step, to_chunk = [], []
    for rep in range(reps):
        live = stream(backbone, None, four, duration=6.0, seed=rep, ahead_s=ahead, engine=engine)
        posted, step_time = 0.0, None
        for i, chunk in enumerate(live):
            got = time.time()
            if i == 5:  # a second or so in: the model is paced, the listener is playing
                posted = time.time()
                live.controls.set_strength(TRAITS[0], -5.0)
            applied = live.controls.applied
            if posted and applied and step_time is None:
                step_time = applied[0]["stream_step"] / backbone.frame_rate
                to_step.append(applied[0]["wall"] - posted)
            if step_time is not None and chunk.end > step_time:
                to_chunk.append(got - posted)
                live.stop()
                step_time = float("inf")
    return to_step, to_chunk


def real_time(
    backbone: Backbone, four: list[Steer], seconds: float, reps: int, engine: str = "auto"
) -> list[float]:
    """Audio seconds per wall second, streaming as fast as it goes (chunks decoded as they come)."""
    out = []
    for rep in range(reps):
        live = stream(backbone, None, four, duration=seconds, seed=rep, engine=engine)
        t0 = time.perf_counter()
        made = sum(len(c.audio) for c in live) / backbone.sample_rate
        out.append(made / (time.perf_counter() - t0))
    return out


def parts(backbone: Backbone, four: list[Steer], seconds: float, engine: str = "auto") -> tuple[float, float]:
    """Real-time factors of the two halves alone: the model (no decoding) and the chunk decoder."""
    from smitin.chunked import ChunkDecoder
    from smitin.generate import generate

    t0 = time.perf_counter()
    codes = generate(
        backbone, None, steer=four, duration=seconds, seed=0, progress=False, engine=engine
    ).codes[0]
    model = seconds / (time.perf_counter() - t0)  # includes generate's own whole-clip decode
    decoder = ChunkDecoder(backbone)
    t0 = time.perf_counter()
    for n in range(1, codes.shape[1] + 1):
        decoder.push(codes[:, :n])
    decoder.push(codes, final=True)
    return model, seconds / (time.perf_counter() - t0)


def underruns(
    backbone: Backbone, four: list[Steer], seconds: float, ahead: float, engine: str = "auto"
) -> tuple[int, float, int]:
    """Starvations of a player that starts at the first chunk, over `seconds` of an endless stream."""
    live: Stream = stream(backbone, None, four, endless=True, seed=0, ahead_s=ahead, engine=engine)
    starts, starved, worst = 0, 0.0, 0.0
    play0 = None
    for chunk in live:
        now = time.perf_counter()
        play0 = play0 if play0 is not None else now
        late = now - (play0 + chunk.start)
        if late > 0:
            starts += 1
            starved += late
            play0 += late  # the player waits for it, then goes on
        worst = max(worst, -late)
        if chunk.end >= seconds:
            live.stop()
    windows = live.result().trace.settings["stream"]["windows"]
    return starts, starved, windows


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f}, n={len(values)})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--shape",
        choices=tuple(SHAPES),
        default="bundled",
        help="the bundled model, or musicgen-small's shape with random weights",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, help="e.g. float16 on a GPU")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: leave as is)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="decoder steps: auto (captured on CUDA, eager elsewhere), eager or captured",
    )
    p.add_argument(
        "--ahead", type=float, default=1.0, help="paced runs: seconds ahead of the listener (the studio's)"
    )
    p.add_argument("--seconds", type=float, default=20.0, help="real-time runs: seconds of audio")
    p.add_argument("--endless", type=float, default=60.0, help="underrun run: seconds of audio")
    p.add_argument("--quick", action="store_true", help="2 repetitions, 8 s real-time runs, 20 s endless")
    p.add_argument("--only", choices=("underruns",), default=None, help="run one measure only")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.reps, args.seconds, args.endless = 2, 8.0, 20.0
    arch = SHAPES[args.shape]
    if arch is None:
        backbone = load("bundled", device=args.device, dtype=args.dtype)
    else:
        backbone = architectures.build(arch, device=args.device)
        if args.dtype:
            backbone.model.to(getattr(torch, args.dtype))
    four = steers(backbone)
    print(machine())
    print(
        f"model: {args.shape} ({backbone.layout.fingerprint()}, {backbone.sample_rate} Hz), device {args.device}, 4 monitored traits, engine {resolve(backbone, args.engine)}"
    )
    engine = args.engine
    list(stream(backbone, None, four, duration=1.0, seed=0, engine=engine))  # warm-up
    began = time.perf_counter()
    if args.only == "underruns":
        starts, starved, windows = underruns(backbone, four, args.endless, args.ahead, engine)
        print(
            f"underruns over {args.endless:g} s endless ({windows} windows), ahead {args.ahead:g} s: {starts} ({starved:.3f} s starved)"
        )
        return
    first = first_chunk(backbone, four, args.reps, engine)
    to_step, to_chunk = control(backbone, four, args.reps, args.ahead, engine)
    rtf = real_time(backbone, four, args.seconds, max(2, args.reps // 2), engine)
    starts, starved, windows = underruns(backbone, four, args.endless, args.ahead, engine)
    model_rtf, decode_rtf = parts(backbone, four, args.seconds, engine)
    rows = [
        ("Generate -> first chunk (s)", summary(first), "<= 1", verdict(statistics.median(first), 1.0)),
        ("control -> its step (s)", summary(to_step), "<= 0.5", verdict(statistics.median(to_step), 0.5)),
        (
            "control -> first chunk with it (s)",
            summary(to_chunk),
            "<= 0.5",
            verdict(statistics.median(to_chunk), 0.5),
        ),
        (
            f"real-time factor, {args.seconds:g} s unpaced",
            summary(rtf),
            ">= 2",
            verdict(statistics.median(rtf), 2.0, higher_is_better=True),
        ),
        (
            f"underruns over {args.endless:g} s endless ({windows} windows), ahead {args.ahead:g} s",
            f"{starts} ({starved:.3f} s starved)",
            "0",
            "PASS" if starts == 0 else "MISS",
        ),
    ]
    print(table(rows, ("measure", "median (range, n)", "goal", "verdict")))
    print(
        f"alone, one run each: the model (4 traits, with generate's whole-clip decode) {model_rtf:.2f}x real "
        f"time, the chunk decoder {decode_rtf:.2f}x; streaming runs both at once (two threads)"
    )
    print(
        f"a listener hears a change about {args.ahead:g} s (the pace) after its chunk is handed out; "
        f"benchmark wall time {time.perf_counter() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
