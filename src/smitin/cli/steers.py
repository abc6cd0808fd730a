"""The command line's steering flags as `Steer` settings, shared by one clip and by --prompts.

`--steer FILE[:ALPHA][:keep]` and `--keep FILE[:ALPHA]` name the traits; `--recipe` with its
overrides (`--heads`, `--direction`, `--threshold`, `--no-monitor`, `--edit`) says how every one
of them is steered. Plain parsing here (no torch): a bad value fails before any model loads.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

from ..recipes import Recipe, check_alpha, check_threshold, parse_heads
from .registry import UsageError

KEEP = "keep"  # the word that turns a --steer into a held trait


class SteerSpec(NamedTuple):
    """One --steer/--keep value: the probe file, its strength and whether the trait is held."""

    path: Path
    alpha: float = 5.0
    keep: bool = False


def parse_steer(spec: str, keep: bool = False, flag: str = "--steer") -> SteerSpec:
    """FILE[:ALPHA][:keep] -> SteerSpec, the strength checked; a colon that is part of a path is kept.

    `keep=True` (the `--keep` flag) holds the trait without the word. A UsageError says what is
    wrong with the strength (not a number, not finite, out of range, negative for a held trait).
    """
    head, sep, word = spec.rpartition(":")
    if sep and head and word.strip().lower() == KEEP and not Path(spec).exists():
        spec, keep = head, True
    path, sep, alpha = spec.rpartition(":")
    if not sep or not path or "/" in alpha or "\\" in alpha or Path(spec).exists():
        return SteerSpec(Path(spec), 5.0, keep)  # no strength given (or the colon belongs to the path)
    try:
        value = check_alpha(alpha)
    except ValueError as err:
        raise UsageError(f"{flag} {spec}: {err}") from None
    if keep and value < 0:
        raise UsageError(
            f"{flag} {spec}: a held trait is pushed back towards present, so its strength must be "
            f"positive, not {value:g} (to remove the trait, --steer FILE:{value:g} without keep)"
        )
    return SteerSpec(Path(path), value, keep)


def steer_specs(args: argparse.Namespace) -> list[SteerSpec]:
    """--steer and --keep values, in that order."""
    keeps = getattr(args, "keep", None) or []
    return [parse_steer(s) for s in args.steer] + [parse_steer(s, True, "--keep") for s in keeps]


def steer_settings(args: argparse.Namespace, how: Recipe) -> dict[str, Any]:
    """The `Steer` keywords every trait shares: the recipe's, with the flags that override it."""
    try:
        heads = parse_heads(args.heads, how.heads)
    except ValueError as err:
        raise UsageError(f"--{err}") from None
    try:
        threshold = check_threshold(args.threshold)
    except ValueError as err:
        raise UsageError(f"--{err}") from None
    return {
        "heads": heads,
        "monitor": how.monitor and not args.no_monitor,
        "threshold": how.threshold if threshold is None else threshold,
        "direction": args.direction or how.direction,
        "edit": getattr(args, "edit", None) or how.edit,
    }
