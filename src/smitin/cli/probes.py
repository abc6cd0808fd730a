"""Handlers of ``smitin probes train | extract | show``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .registry import UsageError


def check_values(args: argparse.Namespace) -> None:
    """Refuse nonsense numbers before the model is loaded (what needs the model: `check_for_model`)."""
    if not (math.isfinite(args.seconds) and args.seconds > 0):
        raise UsageError(f"--seconds must be a positive number of seconds, not {args.seconds}")
    if not math.isfinite(args.gate_db):
        raise UsageError(f"--gate-db must be a number of dB (e.g. -35), not {args.gate_db}")
    for flag, value in (("--batch-size", args.batch_size), ("--last", args.last)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, not {value}")
    if args.max_per_track is not None and args.max_per_track < 1:
        raise UsageError(
            f"--max-per-track must be at least 1 (or left out for no limit), not {args.max_per_track}"
        )
    if "val_fraction" in args and not 0 < args.val_fraction < 1:
        raise UsageError(
            f"--val-fraction is the share of tracks held out for validation: between 0 and 1 (e.g. 0.2), "
            f"not {args.val_fraction}"
        )
    if "C" in args and not (math.isfinite(args.C) and args.C > 0):
        raise UsageError(
            f"--C is the inverse regularisation strength: a positive number (default 1), not {args.C}"
        )


def check_for_model(args: argparse.Namespace, backbone) -> None:
    """Refuse segments shorter than one codec frame, or more positions than a segment holds."""
    rate = backbone.frame_rate
    frames = math.floor(args.seconds * rate + 1e-9)
    if frames < 1:
        raise UsageError(
            f"--seconds {args.seconds:g} is shorter than one codec frame of {backbone.name} "
            f"({1 / rate:g} s at {rate:g} frames per second); use at least {1 / rate:g} s (the paper uses 3)"
        )
    if args.last > frames:
        raise UsageError(
            f"--last {args.last} reads more positions than a {args.seconds:g} s segment holds "
            f"({frames} codec frames of {backbone.name}); lower --last or raise --seconds"
        )


def _load(args: argparse.Namespace, world=None):
    from ..backbone import load

    check_values(args)
    device = world.device(args.device) if world is not None else args.device
    backbone = load(args.model, device=device, dtype=args.dtype)
    check_for_model(args, backbone)
    return backbone


def _model_and_data(args: argparse.Namespace, world):
    """Check the numbers, load the model on this rank's device, find the segments (rank 0 describes them)."""
    from ..data import describe

    backbone = _load(args, world)
    segments = _segments(args, backbone)
    if world.main:
        print(describe(segments.summary))
    return backbone, segments


def _share(args: argparse.Namespace, world, backbone, segments, cache: Path) -> None:
    """Under torchrun: this rank's batches into the shared cache, before rank 0 reads them all."""
    if not world.distributed:
        return
    from ..activations import extract_share

    extract_share(
        backbone,
        segments,
        world,
        cache_dir=cache,
        batch_size=args.batch_size,
        last=args.last,
        text=args.text,
        progress=not args.quiet,
    )


def _segments(args: argparse.Namespace, backbone):
    from .. import data

    if args.positive or args.negative:
        if not (args.positive and args.negative):
            raise data.DataError("give both --positive and --negative folders")
        return data.folder_segments(
            args.positive,
            args.negative,
            sample_rate=backbone.sample_rate,
            seconds=args.seconds,
            trait=args.trait or "trait",
        )
    if not (args.data and args.trait):
        raise data.DataError("give --data DIR and --trait NAME (or --positive DIR --negative DIR)")
    return data.stem_segments(
        args.data,
        args.trait,
        sample_rate=backbone.sample_rate,
        seconds=args.seconds,
        layout=args.layout,
        gate_db=args.gate_db,
        max_segments_per_track=args.max_per_track,
    )


def train(args: argparse.Namespace) -> int:
    """Extract (split across ranks under torchrun) and train; rank 0 trains and writes the file.

    Training is fast next to extraction (one batched solve over every head) and needs every
    activation, so one rank does it once instead of every rank repeating it.
    """
    from ..distributed import barrier, joined
    from ..holdout import check_split
    from ..probes import fit_cached

    with joined(args.device) as world:
        backbone, segments = _model_and_data(args, world)
        summary = getattr(segments, "summary", {}) or {}
        check_split(  # too few tracks: refused before any extraction, on every rank alike
            segments.labels(),
            segments.groups(),
            val_fraction=args.val_fraction,
            seed=args.split_seed,
            source=str(summary.get("root") or "the data"),
            unit="clips" if summary.get("layout") == "folders" else "tracks",
        )
        cache = args.cache or args.out.with_suffix(".cache")
        _share(args, world, backbone, segments, cache)
        if world.main:
            probes = fit_cached(
                backbone,
                segments,
                args.out,
                cache_dir=cache,
                reuse=False,
                batch_size=args.batch_size,
                last=args.last,
                text=args.text,
                progress=not args.quiet,
                val_fraction=args.val_fraction,
                C=args.C,
                direction=args.direction,
                seed=args.split_seed,
            )
            tr, va = probes.meta["training"]["train"], probes.meta["training"]["validation"]
            print(
                f"split by track: train {tr['segments']} segments ({tr['positive']} positive) from "
                f"{tr['tracks']} tracks, validation {va['segments']} ({va['positive']} positive) from "
                f"{va['tracks']} tracks"
            )
            print(probes.summary(5))
            print(f"wrote {args.out} (activation cache: {cache})")
        barrier(world)  # the others end once the file is written
    return 0


def extract(args: argparse.Namespace) -> int:
    from ..activations import extract as extract_activations
    from ..distributed import barrier, joined

    with joined(args.device) as world:
        backbone, segments = _model_and_data(args, world)
        cache = args.cache or Path(f"{args.trait or 'trait'}.cache")
        _share(args, world, backbone, segments, cache)
        if world.main:
            acts = extract_activations(
                backbone,
                segments,
                batch_size=args.batch_size,
                last=args.last,
                text=args.text,
                cache_dir=cache,
                progress=not args.quiet,
            )
            print(
                f"{len(acts.z)} segments x {args.last} positions of {backbone.layout.fingerprint()} in {cache}"
            )
        barrier(world)
    return 0


def show(args: argparse.Namespace) -> int:
    from ..probes import ProbeSet

    probes = ProbeSet.load(args.file)
    print(probes.summary(args.top))
    if args.plot:
        from ..plots import heatmap, save

        ax = heatmap(probes)
        print(f"wrote {save(ax.figure, args.plot)}")
    return 0
