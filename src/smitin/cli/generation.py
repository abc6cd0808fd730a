"""Handlers of ``smitin generate``, ``smitin continue`` and ``smitin demo``.

Generation options are checked (as :class:`~smitin.options.GenerationOptions`) before any model
is loaded: a bad ``--duration`` or ``--every`` fails at once with ``smitin: error: ...``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..options import GenerationOptions
from ..recipes import parse_heads, recipe
from .registry import UsageError


def parse_steer(spec: str) -> tuple[Path, float]:
    """FILE[:ALPHA] -> (path, alpha); a colon that is part of the path is kept."""
    path, sep, alpha = spec.rpartition(":")
    if sep:
        try:
            return Path(path), float(alpha)
        except ValueError:
            pass
    return Path(spec), 5.0


def options_from_args(args: argparse.Namespace, **fields) -> GenerationOptions:
    """The generation options the command line gives, checked; a bad value is a UsageError."""
    try:
        return GenerationOptions(**fields)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _heads(spec: str | None, default: str | int) -> str | int:
    try:
        return parse_heads(spec, default)
    except ValueError as err:
        raise UsageError(f"--{err}") from None


def generate(args: argparse.Namespace) -> int:
    """``smitin generate PROMPT`` and ``smitin continue AUDIO``."""
    how = recipe(args.recipe)
    options = options_from_args(
        args,
        duration=args.duration,
        seed=args.seed,
        batch=args.batch,
        guidance_scale=args.guidance_scale,
        every=args.every if args.every is not None else how.every,
        rows=args.rows,
        gain=args.gain,
    )
    heads = _heads(args.heads, how.heads)
    from ..backbone import load
    from ..generate import continue_audio
    from ..generate import generate as generate_audio
    from ..probes import ProbeSet
    from ..steering import Steer

    steers_spec = [parse_steer(s) for s in args.steer]
    for path, _ in steers_spec:  # fail on a bad probe file before loading a large model
        ProbeSet.load(path)
    backbone = load(args.model, device=args.device, dtype=args.dtype)
    steers = [
        Steer(
            ProbeSet.load(path, backbone),
            alpha=alpha,
            heads=heads,
            monitor=how.monitor and not args.no_monitor,
            threshold=args.threshold,
            direction=args.direction or how.direction,
        )
        for path, alpha in steers_spec
    ]
    if args.command == "generate":
        result = generate_audio(backbone, args.prompt or None, steer=steers, options=options)
    else:
        result = continue_audio(backbone, args.audio, prompt=args.prompt, steer=steers, options=options)
    paths = result.save(args.out, args.trace)
    for path in paths:
        print(f"wrote {path} ({result.audio.shape[1] / result.sample_rate:.2f} s at {result.sample_rate} Hz)")
    if args.trace:
        print(f"wrote {args.trace}")
    if steers:
        print(result.trace.describe())
    if args.plot:
        from ..plots import report

        report(
            args.plot,
            traces=[("steered", result.trace)],
            audio=[("output", result.audio[0], result.sample_rate)],
        )
        print(f"wrote {args.plot}")
    return 0


def demo(args: argparse.Namespace) -> int:
    """``smitin demo``: checks the clips' options, then runs :func:`smitin.demo.run`."""
    options_from_args(args, duration=args.duration, seed=args.seed)
    from ..demo import run

    return run(args)
