"""Captured vs eager decoding on one GPU (issue 25): steps/s, steering overhead, mixed-batch throughput.

One prepared run, at most ~200 s wall time with model construction, printing each result as it
comes and rewriting `bench_gpu.json` + `bench_gpu.md` in --out after every row (a kill keeps what
was measured). Run from the repository root on the device:

    PYTHONUNBUFFERED=1 PYTHONPATH=src timeout 260 python benchmarks/bench_gpu.py --out "$OUT" --budget 190

CPU smoke test of the same code paths on a tiny shape (seconds): `python benchmarks/bench_gpu.py --cpu-smoke`.
Kernels of one captured step, plain vs steered, counted (CPU is enough; the overhead's profile):
`PYTHONPATH=src python benchmarks/bench_gpu.py --kernels bundled,small --out /tmp/kernels`.

Models: musicgen-small, -medium, -large DECODER shapes with random weights in bf16, built on the
GPU; the text encoder and codec are tiny stand-ins (they run once per generation, outside the
step). Generation runs unconditionally through `transformers`' generate (CFG 3, top-k 250), as
smitin does, with smitin's engine context (`smitin.captured.engine`) and steering
(`smitin.steering.apply`): only torch, transformers, safetensors and numpy are imported.

Measured, in this order (most important first; each case skipped once the --budget is spent):
1. small, batch 1: steps/s eager vs captured, unsteered vs 4 monitored traits (median of per-step
   intervals of a whole generate, `transformers`' per-step loop included); the captured step alone
   (graph replay ms) unsteered vs steered: the hook's overhead ratio (target <= 1.02), also on the
   whole step; the real-time verdict (>= 100 steps/s; on a MISS a host profile follows).
2. small: greedy exactness captured vs eager (4 monitored traits, 2 samples, 40 steps; bf16, then
   the same weights in float32): codes equal, first differing frame, max |logit diff|, max |C diff|.
3. small, 32 mixed requests in one batch vs one at a time (3 single requests timed, extrapolated
   to 32: said so in the row); target >= 10x. Then steps/s of the 32-request batch (unsteered, 4
   shared traits, per-request mixed steering), eager vs captured.
4. medium (>= 50 steps/s), then large: the same as 1 and 3.
"""

# ruff: noqa: E402  (the clock starts before the heavy imports)
from __future__ import annotations

import time

T0 = time.perf_counter()  # the budget counts from here: imports and CUDA start-up included

import argparse
import collections
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import traceback
from pathlib import Path
from typing import Any

import torch
from transformers import EncodecConfig, MusicgenConfig, MusicgenForConditionalGeneration, T5Config

from smitin import architectures
from smitin.backbone import Backbone, HeadLayout, load
from smitin.captured import StaticStep, engine
from smitin.probes import ProbeSet
from smitin.steering import Steer, apply

TRAITS = ("drums", "bass", "guitar", "piano")
SAMPLING = {"do_sample": True, "top_k": 250, "guidance_scale": 3.0}
TARGETS = {"small": 100.0, "medium": 50.0}  # steps/s at batch 1, 4 monitored traits


class Bench:
    """Results so far, the time budget, and the files they go to."""

    def __init__(self, out: Path, budget: float) -> None:
        self.out, self.start, self.budget = out, T0, budget
        self.rows: list[dict] = []
        self.notes: list[str] = []
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)

    def add(self, **row: Any) -> None:
        row["t"] = round(time.perf_counter() - self.start, 1)
        self.rows.append(row)
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        self.save()

    def note(self, text: str) -> None:
        print(text, flush=True)
        self.notes.append(text)
        self.save()

    def case(self, name: str, need: float, fn, *args) -> Any:
        """Run one measurement if `need` seconds are left; a failure is printed and skipped."""
        if self.left() < need:
            self.note(f"SKIP {name}: {self.left():.0f} s left of the budget, it needs ~{need:.0f} s")
            return None
        print(f"\n== {name} ({self.left():.0f} s left)", flush=True)
        try:
            return fn(*args)
        except Exception as err:  # one case failing must not lose the others
            self.note(f"FAIL {name}: {type(err).__name__}: {err}")
            traceback.print_exc()
            return None

    def save(self) -> None:
        (self.out / "bench_gpu.json").write_text(json.dumps({"machine": machine(), "rows": self.rows,
                                                             "notes": self.notes}, indent=1))  # fmt: skip
        groups: dict[tuple, list[dict]] = {}  # one table per kind of row (the same columns)
        for r in self.rows:
            groups.setdefault(tuple(r), []).append(r)
        lines = [f"machine: {machine()}"]
        for keys, rows in groups.items():
            lines += ["", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
        lines += ["", *[f"- {n}" for n in self.notes]]
        (self.out / "bench_gpu.md").write_text("\n".join(lines) + "\n")


def machine() -> str:
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{gpu}; torch {torch.__version__}, transformers {transformers.__version__}, "
            f"python {platform.python_version()}, {os.cpu_count()} CPUs")  # fmt: skip


# -- models and probes ----------------------------------------------------------------------------


def build(arch: str, device: str, dtype: torch.dtype) -> Backbone:
    """A random MusicGen with `arch`'s decoder, a tiny text encoder and a tiny 50 Hz codec, on `device`."""
    decoder = architectures.config(arch).decoder
    text = T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    codec = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, hidden_size=16,
                          upsampling_ratios=[8, 5, 4, 4], codebook_size=decoder.vocab_size, codebook_dim=16,
                          num_residual_layers=1, num_lstm_layers=1, target_bandwidths=[2.2], normalize=False)  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        model = MusicgenForConditionalGeneration(
            MusicgenConfig(text_encoder=text, audio_encoder=codec, decoder=decoder)
        )
    model.generation_config.pad_token_id = decoder.pad_token_id
    model.generation_config.decoder_start_token_id = decoder.decoder_start_token_id
    bb = Backbone(model, None, name=f"random-{arch}")
    cast(bb, dtype)
    return bb


def probes(layout: HeadLayout, trait: str, seed: int) -> ProbeSet:
    """Random valid probes of the layout (accuracies in [0.5, 0.9], small sigma: pushes stay sane)."""
    g = torch.Generator().manual_seed(seed)
    shape = (layout.layers, layout.heads, layout.head_dim)
    w = torch.randn(shape, generator=g) / layout.head_dim**0.5
    return ProbeSet(weight=w, bias=torch.zeros(shape[:2]), accuracy=0.5 + 0.4 * torch.rand(shape[:2], generator=g),
                    direction=w / w.norm(dim=-1, keepdim=True), sigma=torch.full(shape[:2], 0.05),
                    mean_pos=torch.zeros(shape), mean_neg=torch.zeros(shape), meta={"trait": trait, "model": "bench"})  # fmt: skip


def four(layout: HeadLayout) -> list[Steer]:
    """4 monitored traits (smitin's recipe: 16 heads each, monitored, every step)."""
    return [
        Steer(probes(layout, t, i), alpha=5.0, threshold=0.6, direction="probe") for i, t in enumerate(TRAITS)
    ]


def mixed(layout: HeadLayout, n: int) -> tuple[list[Steer], list[int]]:
    """n requests, each 1-2 of the 4 traits with its own sign, strength, heads and monitor."""
    rng, sets = random.Random(0), [probes(layout, t, i) for i, t in enumerate(TRAITS)]
    steers, owners = [], []
    for b in range(n):
        for p in rng.sample(sets, rng.choice((1, 2))):
            steers.append(Steer(p, alpha=rng.choice((-1, 1)) * rng.choice((2.0, 5.0, 10.0)), threshold=0.6,
                                heads=rng.choice(("soft", 16)), monitor=rng.random() < 0.7, direction="probe"))  # fmt: skip
            owners.append(b)
    return steers, owners


# -- measurements ---------------------------------------------------------------------------------


def sync(bb: Backbone) -> None:
    if bb.device.type == "cuda":
        torch.cuda.synchronize()


def run(
    bb: Backbone, kind: str, batch: int, steps: int, steers=(), owners=None, greedy=False, replay=0,
    inside=None, **extra,
):  # fmt: skip
    """One generate with `kind`'s engine. Returns a dict: gaps (per-step intervals, s), wall (s), out,
    codes [B, K, frames], state (steering), graph (whether a CUDA graph ran), replay_ms (the
    captured step alone, timed inside the block while its hooks are on; `replay` replays);
    `inside(static_step)`, if given, runs there too (its result under "inside")."""
    stamps: list[float] = []
    made: list[StaticStep] = []
    codes: list[torch.Tensor] = []
    original, codec = StaticStep.run, bb.model.audio_encoder
    decode = codec.decode

    def keep(self, pos):  # remember the static step and its position, to time it afterwards
        if not made or made[-1] is not self:
            made.append(self)
        self.bench_pos = pos
        original(self, pos)

    def keep_codes(audio_codes, *a, **k):
        codes.append(audio_codes[0].detach().cpu())
        return decode(audio_codes, *a, **k)

    StaticStep.run = keep  # type: ignore[method-assign]
    codec.decode = keep_codes
    got: dict[str, Any] = {"replay_ms": None}
    try:
        with (
            apply(bb, list(steers), cfg=True, max_steps=steps + 1, owners=owners) as state,
            engine(bb, kind, state, steps) as ran,
            bb.decoder_steps(lambda _p, _i: stamps.append((time.perf_counter(), time.process_time()))),
            torch.no_grad(),
        ):
            assert ran == kind, f"asked for {kind}, ran {ran}"
            torch.manual_seed(0)
            sync(bb)
            t = time.perf_counter()
            got["out"] = bb.model.generate(**bb.null_condition(batch), max_new_tokens=steps,
                                           **{**SAMPLING, "do_sample": not greedy}, **extra)  # fmt: skip
            sync(bb)
            got["wall"] = time.perf_counter() - t
            if replay and made:
                got["replay_ms"] = replay_ms(bb, made[-1], replay)
            if inside is not None and made:
                got["inside"] = inside(made[-1])
    finally:
        StaticStep.run = original  # type: ignore[method-assign]
        del codec.decode
    pairs = list(zip(stamps, stamps[1:], strict=False))[3:]  # skip the prefills and the capture
    got.update(gaps=[b[0] - a[0] for a, b in pairs], cpu_gaps=[b[1] - a[1] for a, b in pairs],
               codes=codes[-1], state=state, graph=bool(made) and made[-1].graph is not None)  # fmt: skip
    return got


def replay_ms(bb: Backbone, static: StaticStep, n: int) -> float:
    """The captured step alone: median ms of `n` replays (on CPU: calls of the step function)."""
    times = []
    for _ in range(3):
        sync(bb)
        t = time.perf_counter()
        for _ in range(n):
            static.graph.replay() if static.graph is not None else static.run(static.bench_pos)
        sync(bb)
        times.append((time.perf_counter() - t) / n)
    return 1000 * statistics.median(times)


def exactness(b: Bench, bb: Backbone, label: str, steps: int) -> None:
    got = {}
    for kind in ("eager", "captured"):
        got[kind] = run(bb, kind, 2, steps, four(bb.layout), greedy=True, return_dict_in_generate=True,
                        output_logits=True)  # fmt: skip
    e, c = got["eager"], got["captured"]
    same = (e["codes"] == c["codes"]).float().mean().item()
    diff = (e["codes"] != c["codes"]).any(0).any(0).nonzero()
    logits = (torch.stack(e["out"].logits).float() - torch.stack(c["out"].logits).float()).abs().max().item()
    cdiff = (e["state"].trace().c - c["state"].trace().c).abs().max().item()
    b.add(model=bb.name, case=f"exactness {label}", batch=2, steps=steps, graph=c["graph"],
          codes_equal=same == 1.0, share_equal=round(same, 4), first_diff_frame=diff[0].item() if len(diff) else None,
          max_logit_diff=f"{logits:.2e}", max_C_diff=f"{cdiff:.2e}")  # fmt: skip


def speed(b: Bench, bb: Backbone, batch: int, steps: dict[str, int], variants: dict[str, tuple]) -> dict:
    """steps/s per (engine, variant); captured replay ms per variant. Returns {(kind, variant): steps/s}."""
    rates, replay = {}, {}
    for kind in ("captured", "eager"):
        for name, (steers, owners) in variants.items():
            if b.left() < (8 if kind == "eager" else 3):
                b.note(f"SKIP {bb.name} batch {batch} {kind} {name}: budget")
                continue
            got = run(bb, kind, batch, steps[kind], steers, owners, replay=50 if kind == "captured" else 0)
            rate = 1 / statistics.median(got["gaps"])
            rates[kind, name] = rate
            row = dict(model=bb.name, case="speed", batch=batch, engine=kind, variant=name, steps=steps[kind],
                       steps_per_s=round(rate, 1), step_ms=round(1000 / rate, 2), wall_s=round(got["wall"], 2))  # fmt: skip
            if got["replay_ms"] is not None:
                replay[name] = got["replay_ms"]
                row.update(graph=got["graph"], replay_ms=round(replay[name], 3))
            b.add(**row)
    if "plain" in replay:
        for name, ms in replay.items():
            if name != "plain":
                # direct: the hook's replay time over a whole plain captured step (as measured on the
                # H100 for eager: 1 + hook time / plain step time)
                whole = 1000 / rates["captured", "plain"] if ("captured", "plain") in rates else float("nan")
                b.add(model=bb.name, case="hook overhead (captured step alone)", batch=batch, variant=name,
                      ratio=round(ms / replay["plain"], 4), direct_ratio=round(1 + (ms - replay["plain"]) / whole, 4),
                      target="<= 1.02", verdict="PASS" if ms / replay["plain"] <= 1.02 else "MISS")  # fmt: skip
    for kind in ("captured", "eager"):  # the whole step a user waits for (transformers' loop included)
        for name in variants:
            if name != "plain" and (kind, name) in rates and (kind, "plain") in rates:
                ratio = rates[kind, "plain"] / rates[kind, name]
                b.add(model=bb.name, case=f"hook overhead (whole {kind} step)", batch=batch, variant=name,
                      ratio=round(ratio, 4), target="<= 1.02", verdict="PASS" if ratio <= 1.02 else "MISS")  # fmt: skip
    arch = bb.name.removeprefix("random-")
    if batch == 1 and arch in TARGETS and ("captured", "4 monitored") in rates:
        rate, target = rates["captured", "4 monitored"], TARGETS[arch]
        b.add(model=bb.name, case="real time (captured, 4 monitored, batch 1)", steps_per_s=round(rate, 1),
              replay_ms=round(replay.get("4 monitored", float("nan")), 3),
              loop_ms=round(1000 / rate - replay.get("4 monitored", float("nan")), 3),
              target=f">= {target:g}", verdict="PASS" if rate >= target else "MISS")  # fmt: skip
    for name in variants:
        if ("eager", name) in rates and ("captured", name) in rates:
            b.add(model=bb.name, case="captured / eager steps/s", batch=batch, variant=name,
                  speedup=round(rates["captured", name] / rates["eager", name], 2))  # fmt: skip
    return rates


def throughput(b: Bench, bb: Backbone, n: int, steps: int, alone: int, kind: str = "captured") -> None:
    """n mixed requests in one batch vs one at a time (`alone` of them timed, extrapolated to n)."""
    steers, owners = mixed(bb.layout, n)
    batched = run(bb, kind, n, steps, steers, owners)["wall"]
    single = []
    for r in range(alone):
        mine = [s for s, o in zip(steers, owners, strict=True) if o == r]
        single.append(run(bb, kind, 1, steps, mine, [0] * len(mine))["wall"])
    per = statistics.mean(single)
    ratio = per * n / batched
    b.add(model=bb.name, case=f"throughput {n} mixed", engine=kind, steps=steps, batched_s=round(batched, 2),
          one_request_s=round(per, 3), one_at_a_time_s=f"{per * n:.1f} (extrapolated from {alone})",
          speedup=round(ratio, 2), target=">= 10", verdict="PASS" if ratio >= 10 else "MISS")  # fmt: skip


def profile(b: Bench, bb: Backbone, steps: int) -> None:
    """Host-side profile of a captured, steered generate at batch 1: the ops that cost the most."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    with prof(activities=[ProfilerActivity.CPU]) as p:
        run(bb, "captured", 1, steps, four(bb.layout))
    table = p.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    print(table, flush=True)
    (b.out / f"profile-{bb.name}.txt").write_text(table)
    b.note(f"{bb.name}: host profile of {steps} captured steps in profile-{bb.name}.txt")


# ops that launch no kernel: views and metadata (what a CUDA graph does not hold)
VIEWS = {"aten::view", "aten::_unsafe_view", "aten::as_strided", "aten::transpose", "aten::t", "aten::slice",
         "aten::select", "aten::unsqueeze", "aten::squeeze", "aten::expand", "aten::permute", "aten::narrow",
         "aten::alias", "aten::detach", "aten::reshape", "aten::empty", "aten::empty_strided", "aten::split",
         "aten::unbind", "aten::lift_fresh", "aten::resolve_conj", "aten::resolve_neg", "aten::chunk",
         "aten::numpy_T", "aten::contiguous"}  # fmt: skip


def step_ops(static: StaticStep) -> collections.Counter:
    """The ops one captured step calls (the step function, run without its graph), by name: the
    top-level aten ops, views left out. On a GPU each is at least one kernel in the graph (a
    dtype cast that is a no-op here, in float32, is one in bf16)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    with prof(activities=[ProfilerActivity.CPU]) as p:
        static.run(static.bench_pos)
    events = p.events()
    inner = {id(c) for e in events for c in e.cpu_children}
    return collections.Counter(
        e.name for e in events if id(e) not in inner and e.name.startswith("aten::") and e.name not in VIEWS
    )


def kernels(b: Bench, bb: Backbone, batch: int, variants: dict[str, tuple]) -> None:
    """Where the steered step's extra time goes on a GPU, counted: the kernels of one captured step
    (`step_ops`), plain vs steered, and the ops the steering adds, by name."""
    counts = {}
    for variant, (steers, owners) in variants.items():
        got = run(bb, "captured", batch, 6, steers, owners, greedy=True, inside=step_ops)
        counts[variant] = got["inside"]
    plain = counts.pop("plain")
    layers = bb.layout.layers
    for variant, got in counts.items():
        extra = got - plain
        added = sum(extra.values())
        top = ", ".join(f"{n.removeprefix('aten::')} {c}" for n, c in extra.most_common(8))
        b.add(case="kernels", model=bb.name, batch=batch, variant=variant, plain_kernels=sum(plain.values()),
              steered_kernels=sum(got.values()), added=added, added_per_layer=round(added / layers, 2),
              top_added=top, fewer=", ".join(f"{n} {c}" for n, c in (plain - got).items()))  # fmt: skip


def compare(b: Bench, bb: Backbone, variant: str, steers: list, steps: int, reps: int) -> None:
    """The CPU target (captured no slower than eager): both engines interleaved, who goes first
    alternating, `reps` times; steps per second of this process's CPU time (one torch thread: other
    jobs on a shared machine swing wall time 2x); the median of the per-repetition ratios, and spread."""
    rates: dict[str, list[float]] = {"eager": [], "captured": []}
    for rep in range(reps):
        for kind in ("eager", "captured") if rep % 2 == 0 else ("captured", "eager"):
            rates[kind].append(1 / statistics.median(run(bb, kind, 1, steps, steers)["cpu_gaps"]))
    ratios = [c / e for c, e in zip(rates["captured"], rates["eager"], strict=True)]
    ratio = statistics.median(ratios)
    b.add(model=bb.name, case="cpu: captured / eager steps per CPU-second", variant=variant, steps=steps, reps=reps,
          eager_steps_per_s=round(statistics.median(rates["eager"]), 1),
          captured_steps_per_s=round(statistics.median(rates["captured"]), 1), ratio=round(ratio, 3),
          spread=f"{min(ratios):.2f}-{max(ratios):.2f}", target=">= 1", verdict="PASS" if ratio >= 1 else "MISS")  # fmt: skip


def cast(bb: Backbone, dtype: torch.dtype) -> None:
    """The decoder and text encoder to `dtype` (the codec stays float32: tiny, it only decodes)."""
    for part in (bb.model.decoder, bb.model.text_encoder, getattr(bb.model, "enc_to_dec_proj", None)):
        if part is not None:
            part.to(dtype)


def model_cases(b: Bench, arch: str, device: str, dtype, quick: bool, exact: bool) -> None:
    """One model's cases, most important first: batch 1, exactness (if `exact`), the 32-request
    throughput, the 32-request steps/s."""
    t = time.perf_counter()
    bb = build(arch, device, dtype)
    b.note(f"{arch}: {bb.layout.fingerprint()} built on {device} in {time.perf_counter() - t:.1f} s")
    big = arch in ("medium", "large")
    steps = {"captured": 12 if quick else 80, "eager": 8 if quick else (24 if big else 40)}
    lay = bb.layout
    one = {"plain": ((), None), "4 monitored": (four(lay), None)}
    rates = b.case(f"{arch} batch 1", 20, speed, b, bb, 1, steps, one)
    if exact:  # the same weights both ways; fp32 (bf16 weights cast up) is the strict one
        name = str(dtype).split(".")[-1]
        b.case(f"{arch} exactness {name}", 10, exactness, b, bb, name, 8 if quick else 40)
        cast(bb, torch.float32)
        b.case(f"{arch} exactness float32", 10, exactness, b, bb, "float32", 8 if quick else 40)
        cast(bb, dtype)  # exact: the values came from dtype
    missed = arch in TARGETS and rates and rates.get(("captured", "4 monitored"), 0) < TARGETS[arch]
    if missed or quick:  # (quick: the smoke test runs the profile too)
        b.case(f"{arch} profile (a MISS: where a captured step's time goes)", 10, profile, b, bb, 1 if quick else 30)  # fmt: skip
    n = 4 if quick else 32
    b.case(f"{arch} throughput", 15, throughput, b, bb, n, 12 if quick else 103, 2 if quick else 3)
    variants = {"plain": ((), None), "4 monitored": (four(lay), None), "mixed per request": mixed(lay, n)}
    if big:
        variants.pop("4 monitored")
    b.case(f"{arch} {n} requests", 25, speed, b, bb, n, steps, variants)
    del bb
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench-gpu-out")))
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds; later cases are skipped past it (default 190 for the GPU run, none for "
                    "--kernels and --cpu-compare)")  # fmt: skip
    ap.add_argument("--models", default="small,medium,large")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shape on CPU: the code paths in seconds")
    ap.add_argument("--kernels", default="",
                    help="count the kernels of one captured step, plain vs steered, for these shapes (CPU is enough)")  # fmt: skip
    ap.add_argument("--cpu-compare", action="store_true",
                    help="CPU target: captured vs eager at batch 1 on the bundled model and musicgen-small's shape")  # fmt: skip
    args = ap.parse_args(argv)
    import transformers

    transformers.logging.set_verbosity_error()
    local = args.kernels or args.cpu_compare  # CPU modes: no lease to fit in
    b = Bench(args.out, args.budget if args.budget is not None else math.inf if local else 190.0)
    b.note(f"machine: {machine()}")
    if args.cpu_smoke:
        model_cases(b, "tiny", "cpu", torch.bfloat16, quick=True, exact=True)
        return 0
    if args.kernels:
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        for arch in args.kernels.split(","):
            bb = load("bundled") if arch == "bundled" else build(arch, dev, torch.float32)
            lay = bb.layout
            for batch in (1, 32):
                variants = {"plain": ((), None), "4 monitored": (four(lay), None)}
                if batch > 1:
                    variants["mixed per request"] = mixed(lay, batch)
                b.case(f"{arch} kernels batch {batch}", 0, kernels, b, bb, batch, variants)
            del bb
            gc.collect()
        return 0
    if args.cpu_compare:
        torch.set_num_threads(1)  # CPU time per step is then this thread's work
        for name in ("bundled", "small"):
            bb = load("bundled") if name == "bundled" else build("small", "cpu", torch.float32)
            for variant, steers in (("plain", []), ("4 monitored", four(bb.layout))):
                steps, reps = (60, 7) if name == "bundled" else (12, 3)
                b.case(f"{name} cpu {variant}", 0, compare, b, bb, variant, steers, steps, reps)
        return 0
    if not torch.cuda.is_available():
        b.note("no CUDA device: nothing measured (use --cpu-smoke on a CPU)")
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False  # the float32 exactness check must be float32
    for arch in args.models.split(","):
        need = {"small": 30, "medium": 35, "large": 40}.get(arch, 30)
        if b.left() < need:
            b.note(f"SKIP {arch}: {b.left():.0f} s left")
            continue
        try:
            model_cases(b, arch, "cuda", torch.bfloat16, quick=False, exact=arch == "small")
        except Exception as err:
            b.note(f"FAIL {arch}: {type(err).__name__}: {err}")
            traceback.print_exc()
    b.note(f"done in {time.perf_counter() - b.start:.0f} s (imports included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
