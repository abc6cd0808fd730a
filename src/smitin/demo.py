"""`smitin demo`: the whole method in one offline command, on the bundled model.

Renders a small stem set (cached), trains drum probes (cached), then generates one prompt four
ways with the same seed: unsteered, ITI (top-K heads, always on), SMITIN (smitin's recipe: the
same heads and direction, self-monitored) and SMITIN with the paper's exact recipe, and writes
the WAVs, traces and one PNG report. Its options are defined in
`smitin.cli.arguments.demo`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .backbone import load
from .defaults import train_default_probes
from .generate import generate
from .probes import ProbeSet
from .recipes import DEFAULT_RECIPE, recipe
from .steering import Steer


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    progress = not args.quiet
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load(args.model)
    print(f"model {model.name}: {model.layout.fingerprint()} heads, {model.sample_rate} Hz")
    probes = ProbeSet.load(train_default_probes(model, trait=args.trait, progress=progress), model)
    probes.save(out / f"{args.trait}.safetensors")
    print(probes.summary(5))
    k = args.top_k or recipe("iti").heads
    variants = {
        "unsteered": ([], recipe(DEFAULT_RECIPE).every),
        "iti": ([Steer.from_recipe(probes, "iti", alpha=args.alpha, heads=k)], recipe("iti").every),
        "smitin": (
            [Steer.from_recipe(probes, DEFAULT_RECIPE, alpha=args.alpha)],
            recipe(DEFAULT_RECIPE).every,
        ),
        "paper": ([Steer.from_recipe(probes, "paper", alpha=args.alpha)], recipe("paper").every),
    }
    results = {}
    for name, (steer, every) in variants.items():
        r = generate(
            model,
            args.prompt,
            steer=steer,
            duration=args.duration,
            seed=args.seed,
            every=every,
            progress=progress,
        )
        r.save(out / f"{name}.wav", out / f"{name}.trace.json" if steer else None)
        results[name] = r
    from .plots import report

    report(
        out / "report.png",
        probes=[probes],
        traces=[(n, results[n].trace) for n in ("iti", "smitin", "paper")],
        audio=[(n, r.audio[0], r.sample_rate) for n, r in results.items()],
    )
    summary = {
        "prompt": args.prompt,
        "trait": args.trait,
        "alpha": args.alpha,
        "iti_top_k": k,
        "seconds": round(time.perf_counter() - t0, 1),
        "share_of_steps_edited": {
            n: results[n].trace.share_applied()[args.trait] for n in ("iti", "smitin", "paper")
        },
        "mean_probe_value": {n: float(results[n].trace.c.mean()) for n in ("iti", "smitin", "paper")},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(
        f"wrote {out}/: unsteered.wav iti.wav smitin.wav paper.wav, *.trace.json, report.png "
        f"({summary['seconds']} s)"
    )
    return 0
