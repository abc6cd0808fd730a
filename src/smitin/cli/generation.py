"""Handlers of ``smitin generate``, ``smitin continue`` and ``smitin demo``.

Generation options are checked (as :class:`~smitin.options.GenerationOptions`) before any model
is loaded: a bad ``--duration`` or ``--every`` fails at once with ``smitin: error: ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..options import GenerationOptions
from ..recipes import check_heads, recipe
from . import streaming
from .registry import UsageError, check_paths
from .steers import steer_settings, steer_specs

FLAGS = {"guidance_scale": "--guidance", "duration": "--duration", "batch": "--batch", "every": "--every"}


def options_from_args(args: argparse.Namespace, **fields) -> GenerationOptions:
    """The generation options the command line gives, checked; a bad value is a UsageError."""
    try:
        return GenerationOptions(**fields)
    except ValueError as err:
        message = str(err)
        for name, flag in FLAGS.items():  # say it with the flag the user typed
            if message.startswith(name):
                message = flag + message[len(name) :]
                break
        raise UsageError(message) from None


def _outputs(args: argparse.Namespace) -> None:
    """Refuse unwritable --out/--trace/--plot (and a batch's out-N.wav), or a --out or --plot of an
    unknown file type, before any model is loaded."""
    from ..audio import WRITABLE_SUFFIXES
    from ..files import OutputError, check_writable

    check_paths(args, files=("out", "trace", "plot"))
    try:
        check_writable(args.out, "--out", suffixes=WRITABLE_SUFFIXES)
    except OutputError as err:
        raise UsageError(str(err)) from None
    # out-0.wav, out-1.wav... next to --out, in one folder: the first and the last stand for all
    for i in sorted({0, args.batch - 1}) if args.batch > 1 else ():
        check_paths(
            argparse.Namespace(out=args.out.with_name(f"{args.out.stem}-{i}{args.out.suffix}")),
            files=("out",),
        )


def _lanes(
    args: argparse.Namespace, traits: list[str], duration: float | None, strengths: dict[str, float]
) -> dict:
    """--lane and --lanes as {trait: Lane}, checked against the steered traits, their strengths and
    the duration (None: an endless stream, no end to check)."""
    from ..lanes import LaneError, check_lanes, load_lanes, parse_lane_args

    try:
        lanes = parse_lane_args(args.lane)
        if args.lanes is not None:
            more = load_lanes(args.lanes)
            both = sorted(set(lanes) & set(more))
            if both:
                raise LaneError(f"{', '.join(both)}: given by --lane and in {args.lanes}; keep one")
            lanes.update(more)
        check_lanes(lanes, traits, duration, strengths)
    except LaneError as err:
        raise UsageError(str(err)) from None
    return lanes


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
        engine=args.engine,
    )
    settings = steer_settings(args, how)
    heads = settings["heads"]
    steers_spec = steer_specs(args)
    if args.command == "generate" and (args.prompts is None) == (args.prompt is None):
        raise UsageError("give a PROMPT or --prompts FILE (one of them)")
    if args.command == "generate" and args.prompts is not None:
        from . import batch

        if args.lane or args.lanes:
            raise UsageError("--lane/--lanes work with one PROMPT, not yet with --prompts")
        if args.out == Path("out.wav"):  # the single-file default: a folder in batch mode
            args.out = Path("generations")
        args.steers = steers_spec
        return batch.run(args, options, settings)
    from ..distributed import world_from_env

    if world_from_env().distributed:
        raise UsageError(
            f"smitin {args.command} makes one file and runs in one process; "
            "under torchrun use smitin generate --prompts FILE"
        )
    streaming.check(args)
    if not (getattr(args, "stream", False) and str(args.out) == "-"):
        _outputs(args)
    from .. import audio as audio_io

    if args.command == "continue":
        audio_io.inspect(args.audio)  # readable, finite, not silent: before loading a model
    from ..backbone import load
    from ..generate import continue_audio
    from ..generate import generate as generate_audio
    from ..probes import ProbeSet
    from ..steering import Steer

    traits = [ProbeSet.load(spec.path).trait for spec in steers_spec]  # bad files fail before the model
    lanes = _lanes(
        args,
        traits,
        None if getattr(args, "endless", False) else options.duration,
        {t: spec.alpha for t, spec in zip(traits, steers_spec, strict=True)},
    )
    backbone = load(args.model, device=args.device, dtype=args.dtype)
    if args.heads is not None:  # given: more heads than the model has is refused (a recipe's K is capped)
        lay = backbone.layout
        try:
            check_heads(heads, lay.layers, lay.heads, backbone.name)
        except ValueError as err:
            raise UsageError(f"--{err}") from None
    steers = [
        Steer(
            ProbeSet.load(spec.path, backbone),
            alpha=spec.alpha,
            keep=spec.keep,
            lane=lanes.get(trait),
            **settings,
        )
        for spec, trait in zip(steers_spec, traits, strict=True)
    ]
    if getattr(args, "stream", False):
        return streaming.run(args, backbone, steers, options)
    if args.command == "generate":
        result = generate_audio(backbone, args.prompt or None, steer=steers, options=options)
    else:
        result = continue_audio(backbone, args.audio, prompt=args.prompt, steer=steers, options=options)
    with_prompt = getattr(args, "with_prompt", False)
    paths = result.save(args.out, args.trace, with_prompt=with_prompt)
    written = result.output(with_prompt)
    out = result.trace.settings["output"]
    for i, path in enumerate(paths):
        note = (
            f", scaled by {out['peak_gain'][i]:.3f} to stay below full scale"
            if out["peak_gain"][i] < 1
            else ""
        )
        print(
            f"wrote {path} ({written.shape[1] / result.sample_rate:.2f} s at {result.sample_rate} Hz{note})"
        )
    for i in result.quiet():
        print(
            f"warning: {paths[i]} is nearly silent ({out['rms_dbfs'][i]:.0f} dBFS); "
            "try another --seed or prompt",
            file=sys.stderr,
        )
    if args.trace:
        print(f"wrote {args.trace}")
    if steers:
        print(result.trace.describe())
    if args.plot:
        from ..files import atomic
        from ..plots import report

        with atomic(args.plot) as tmp:
            report(
                tmp,
                traces=[("steered", result.trace)],
                audio=[("output", written[0], result.sample_rate)],
            )
        print(f"wrote {args.plot}")
    return 0


def demo(args: argparse.Namespace) -> int:
    """``smitin demo``: checks the clips' options, then runs :func:`smitin.demo.run`."""
    options_from_args(args, duration=args.duration, seed=args.seed)
    from ..demo import run

    return run(args)
