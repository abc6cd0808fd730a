"""`smitin demo`: the whole method in one offline command, on the bundled model.

Renders a small stem set (cached), trains drum probes (cached), then generates one prompt four
ways with the same seed: unsteered, ITI (top-K heads along the class-mean difference, always on),
SMITIN (smitin's recipe: the top-16 heads along the probe weights, self-monitored) and SMITIN with
the paper's exact recipe, and writes
the WAVs, traces and one PNG report. Beside what the probes read, the report and summary.json say
what each clip kept of the music (`keep_measures`: noisiness, pulse, and the harmony of the
unsteered clip of the same seed), measured on the audio, not by the probes: steering that turns
the music into noise shows there (issue 22). Its options are defined in `smitin.cli.arguments.demo`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

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

    kept = keep_measures({n: r.audio[0] for n, r in results.items()}, model.sample_rate)
    report(
        out / "report.png",
        probes=[probes],
        traces=[(n, results[n].trace) for n in ("iti", "smitin", "paper")],
        audio=[(n, r.audio[0], r.sample_rate) for n, r in results.items()],
        notes={n: keep_note(m) for n, m in kept.items()},
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
        "kept_of_the_music": kept,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(
        f"wrote {out}/: unsteered.wav iti.wav smitin.wav paper.wav, *.trace.json, report.png "
        f"({summary['seconds']} s)"
    )
    return 0


def keep_measures(clips: dict[str, np.ndarray], sample_rate: int) -> dict[str, dict[str, float]]:
    """Per clip: spectral flatness (noisiness: ~0 tones, 0.56 white noise), pulse clarity (0-1) and
    harmony kept (pitch-class correlation with the unsteered clip, 1 for itself), from the audio.

    The first clip is the unsteered one; the others were made with the same prompt and seed.
    """
    from .experiment.keep import flatness, harmonic_continuity, pulse_clarity

    names = list(clips)
    audio = np.stack([clips[n] for n in names]).astype(np.float32)
    flat = flatness(audio, sample_rate)
    pulse = pulse_clarity(audio, sample_rate)
    harmony = harmonic_continuity(np.repeat(audio[:1], len(names), 0), audio, sample_rate)
    return {
        n: {"flatness": round(float(f), 4), "pulse": round(float(p), 3), "harmony_kept": round(float(h), 3)}
        for n, f, p, h in zip(names, flat, pulse, harmony, strict=True)
    }


def keep_note(m: dict[str, float]) -> str:
    return f"flatness {m['flatness']:.3f}, pulse clarity {m['pulse']:.2f}, harmony of unsteered kept {m['harmony_kept']:.2f}"
