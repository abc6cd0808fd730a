"""`smitin demo`: the whole method in one offline command, on the bundled model.

Renders a small stem set (cached), trains drum probes (cached), then generates one prompt three
ways with the same seed: unsteered, ITI (top-K heads, always on) and SMITIN (soft weights +
self-monitoring), and writes the WAVs, traces and one PNG report.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from .backbone import Backbone, load
from .generate import generate
from .probes import ProbeSet, fit
from .steering import Steer

DEFAULT_PROMPT = "a calm piano piece"


def cache_dir() -> Path:
    """Where rendered stems and default probes live between runs ($SMITIN_CACHE or ~/.cache/smitin)."""
    return Path(os.environ.get("SMITIN_CACHE", Path.home() / ".cache" / "smitin"))


def default_stems(sample_rate: int, songs: int = 16, seed: int = 0, progress: bool = True) -> Path:
    """A small rendered stem set at `sample_rate`, rendered once and reused."""
    from .synth import render_dataset

    root = cache_dir() / f"stems-{songs}-seed{seed}-{sample_rate}"
    if not (root / "songs.jsonl").exists():
        render_dataset(root, songs=songs, seed=seed, sample_rate=sample_rate, progress=progress)
    return root


def default_probes(
    backbone: Backbone, trait: str = "drums", progress: bool = True, **stem_options
) -> ProbeSet:
    """Probes for `trait` on `backbone`, trained on the default stem set once and cached."""
    from .data import stem_segments

    tag = backbone.weights_digest()
    path = cache_dir() / "probes" / f"{trait}-{backbone.layout.fingerprint()}-{tag}.safetensors"
    if path.exists():
        return ProbeSet.load(path, backbone)
    stems = default_stems(backbone.sample_rate, progress=progress, **stem_options)
    segments = stem_segments(stems, trait, sample_rate=backbone.sample_rate)
    probes = fit(backbone, segments, cache_dir=path.with_suffix(".cache"), progress=progress)
    probes.save(path)
    return probes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", type=Path, default=Path("smitin-demo"), help="output folder (default smitin-demo)"
    )
    p.add_argument("--model", default="bundled", help="MusicGen to use (default: the bundled tiny model)")
    p.add_argument("--trait", default="drums", help="trait to add (default drums)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help=f"text prompt (default {DEFAULT_PROMPT!r})")
    p.add_argument("--alpha", type=float, default=5.0, help="steering strength (default 5, the paper's)")
    p.add_argument(
        "--top-k", type=int, default=None, help="heads ITI steers (default: a quarter of all heads)"
    )
    p.add_argument("--duration", type=float, default=8.0, help="seconds per clip (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed, shared by the three clips (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    progress = not args.quiet
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load(args.model)
    print(f"model {model.name}: {model.layout.fingerprint()} heads, {model.sample_rate} Hz")
    probes = default_probes(model, args.trait, progress=progress)
    probes.save(out / f"{args.trait}.safetensors")
    print(probes.summary(5))
    k = args.top_k or max(1, model.layout.layers * model.layout.heads // 4)
    variants = {
        "unsteered": [],
        "iti": [Steer(probes, alpha=args.alpha, heads=k, monitor=False)],
        "smitin": [Steer(probes, alpha=args.alpha)],
    }
    results = {}
    for name, steer in variants.items():
        r = generate(
            model, args.prompt, steer=steer, duration=args.duration, seed=args.seed, progress=progress
        )
        r.save(out / f"{name}.wav", out / f"{name}.trace.json" if steer else None)
        results[name] = r
    from .plots import report

    report(
        out / "report.png",
        probes=[probes],
        traces=[(n, results[n].trace) for n in ("iti", "smitin")],
        audio=[(n, r.audio[0], r.sample_rate) for n, r in results.items()],
    )
    summary = {
        "prompt": args.prompt,
        "trait": args.trait,
        "alpha": args.alpha,
        "iti_top_k": k,
        "seconds": round(time.perf_counter() - t0, 1),
        "share_of_steps_edited": {n: results[n].trace.share_applied()[args.trait] for n in ("iti", "smitin")},
        "mean_probe_value": {n: float(results[n].trace.c.mean()) for n in ("iti", "smitin")},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(
        f"wrote {out}/: unsteered.wav iti.wav smitin.wav, *.trace.json, report.png ({summary['seconds']} s)"
    )
    return 0
