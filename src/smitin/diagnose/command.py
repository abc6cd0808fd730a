"""`smitin diagnose`: its options (no torch, so --help answers at once) and its handler."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import fields
from pathlib import Path

from .settings import ANALYSES, DiagnoseError, Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Settings()
    p.add_argument("--trait", default=d.trait, help=f"stem family to diagnose (default {d.trait})")
    p.add_argument("--out", type=Path, default=d.out, help="folder for diagnosis.json, summary.md and caches")
    p.add_argument("--model", default=d.model, help="MusicGen: 'bundled' (default), a hub id or a folder")
    p.add_argument("--device", default=d.device, help="torch device (default cpu)")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="stem collection (as for smitin probes train); default: render --songs songs into OUT/experiment/data",
    )
    p.add_argument(
        "--songs", type=int, default=d.songs, help=f"songs to render without --data (default {d.songs})"
    )
    p.add_argument(
        "--probes",
        type=Path,
        default=None,
        help="probe file of the trait (smitin probes train); default: fitted on the data's probe tracks",
    )
    p.add_argument(
        "--analyses",
        default=",".join(d.analyses),
        help=f"comma-separated from {', '.join(ANALYSES)} (default: all). directions: is loudness or noise "
        "part of the push direction; monitor: does it read noise as the trait; causal: which heads and layers "
        "move the next token towards the trait's codes; push: alpha, heads, layers, schedule, fixed vs bounded "
        "edits; sampling: temperature and top-k",
    )
    p.add_argument("--prompts", type=int, default=d.prompts, help=f"trait-free prompts (default {d.prompts})")
    p.add_argument("--seeds", type=int, default=d.seeds, help=f"seeds per prompt (default {d.seeds})")
    p.add_argument(
        "--duration", type=float, default=d.duration, help=f"seconds generated (default {d.duration:g})"
    )
    p.add_argument(
        "--prompt-seconds",
        type=float,
        default=d.prompt_seconds,
        help=f"prompt length (default {d.prompt_seconds:g})",
    )
    p.add_argument(
        "--alpha", type=float, default=d.alpha, help=f"strength of smitin's recipe (default {d.alpha:g})"
    )
    p.add_argument("--pairs", type=int, default=d.pairs, help=f"with/without pairs read (default {d.pairs})")
    p.add_argument(
        "--noise-levels",
        default=",".join(f"{x:g}" for x in d.noise_levels),
        help="noise added to trait-free clips, relative to their RMS (default 0.05,0.15,0.3)",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="a push variant to add, e.g. strong:alpha=10,heads=32,edit=bounded,layers=0-1 (keys: alpha, heads, "
        "direction (mass_mean, probe, or denoised: blind to the heads' response to noise), monitor, blind "
        "(1: the monitor reads with noise-blind probe weights), threshold, edit, every, rows, layers, "
        "temperature, top_k, keep); with --only-variants, instead of the built-in ones",
    )
    p.add_argument(
        "--only-variants", action="store_true", help="run only the --variant ones in the push analysis"
    )
    p.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="TRAIT[=FILE]",
        help="another trait to watch in every continuation (retention and judge change: does the push keep it?) "
        "and to hold in the variants with keep=1 (built in: the recipe and the bounded edit, keeping); FILE: its "
        "probes (default: fitted on the probe tracks). Repeat for several",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="base seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the command line, checked before any model loads (a DiagnoseError names the flag)."""
    from .variants import parse_variant

    analyses = [a.strip() for a in args.analyses.split(",") if a.strip()]
    bad = [a for a in analyses if a not in ANALYSES]
    if bad or not analyses:
        raise DiagnoseError(f"--analyses: unknown {bad}; choose from {', '.join(ANALYSES)}")
    checks = [(n, getattr(args, n) >= 1, "at least 1") for n in ("prompts", "seeds", "pairs", "songs")]
    checks += [
        (n, getattr(args, n) > 0, "a positive number of seconds") for n in ("duration", "prompt_seconds")
    ]
    for name, ok, what in checks:
        if not ok:
            raise DiagnoseError(f"--{name.replace('_', '-')} must be {what}, not {getattr(args, name)}")
    try:
        levels = [float(x) for x in args.noise_levels.split(",") if x.strip()]
    except ValueError as err:
        raise DiagnoseError(f"--noise-levels: {err}") from None
    try:
        for spec in args.variant:
            parse_variant(spec)
    except ValueError as err:
        raise DiagnoseError(str(err)) from None
    for item in args.keep:
        trait, eq, path = item.partition("=")
        if not trait.strip() or trait.strip() == args.trait:
            raise DiagnoseError(f"--keep {item!r}: name another trait than --trait {args.trait}, e.g. piano")
        if eq and not Path(path.strip()).is_file():
            raise DiagnoseError(f"--keep {item}: no such probe file {path.strip()}")
    if args.only_variants and not args.variant:
        raise DiagnoseError("--only-variants needs at least one --variant")
    if args.probes is not None and not args.probes.is_file():
        raise DiagnoseError(f"--probes {args.probes}: no such file; train one with smitin probes train")
    given = {f.name: getattr(args, f.name) for f in fields(Settings) if hasattr(args, f.name)}
    return Settings(
        **{
            **given,
            "analyses": analyses,
            "noise_levels": levels,
            "variants": list(args.variant),
            "keep": list(args.keep),
            "progress": not args.quiet,
        }
    )


def run(args: argparse.Namespace) -> int:
    from .diagnosis import diagnose

    settings = settings_from_args(args)
    command = "smitin " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    results = diagnose(settings, command=command, only_variants=args.only_variants)
    print(results["markdown"])
    print(f"wrote {settings.out / 'diagnosis.json'} and {settings.out / 'summary.md'}")
    return 0
