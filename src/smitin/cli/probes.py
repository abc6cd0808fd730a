"""Handlers of ``smitin probes train | extract | show``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _load(args: argparse.Namespace):
    from ..backbone import load

    return load(args.model, device=args.device, dtype=args.dtype)


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
    from ..data import describe
    from ..probes import fit_cached

    backbone = _load(args)
    segments = _segments(args, backbone)
    print(describe(segments.summary))
    cache = args.cache or args.out.with_suffix(".cache")
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
        f"split by track: train {tr['segments']} segments ({tr['positive']} positive) from {tr['tracks']} tracks, "
        f"validation {va['segments']} ({va['positive']} positive) from {va['tracks']} tracks"
    )
    print(probes.summary(5))
    print(f"wrote {args.out} (activation cache: {cache})")
    return 0


def extract(args: argparse.Namespace) -> int:
    from ..activations import extract as extract_activations
    from ..data import describe

    backbone = _load(args)
    segments = _segments(args, backbone)
    print(describe(segments.summary))
    cache = args.cache or Path(f"{args.trait or 'trait'}.cache")
    acts = extract_activations(
        backbone,
        segments,
        batch_size=args.batch_size,
        last=args.last,
        text=args.text,
        cache_dir=cache,
        progress=not args.quiet,
    )
    print(f"{len(acts.z)} segments x {args.last} positions of {backbone.layout.fingerprint()} in {cache}")
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
