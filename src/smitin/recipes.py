"""Named recipes: which heads to push, along which direction, how often, and whether to monitor.

A recipe is plain data (no torch), so the command line can list and check it before loading a
model. `smitin` (the default) is the recipe that added the instrument and kept the most of the
music on the bundled model, on the frontier of presence against keeping (docs/diagnosis.md
section 8, docs/results.md): the 16 most accurate heads at weight 1, pushed at every step,
self-monitored until the watched heads read what they read on the trait's class mean ("positive";
the paper's median(acc) - std(acc) stopped too early, most with weak probes). Its direction is
"auto": the class-mean difference (ITI's; the harder push) unless white noise moves it half as far
as the trait itself or more (the probe file's `noise_response`), then the unit probe weights (the
paper's): for drums the class-mean push added broadband noise that covered the piano, for bass,
guitar and piano noise barely moves it. "denoised" (the class-mean difference blind to the heads'
response to noise) is the other direction that adds no more noise than a real stem. Every recipe adds a fixed
shift per edit; `edit="bounded"` (`--edit bounded`) instead pushes each head to the trait's
class-mean reading and no further (`smitin.edits`).
`paper` is the paper's exact recipe: soft accuracy weights over all heads, the probe-weight
direction, every 5th step. `iti` is plain ITI: `smitin` without the monitor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """How to steer, apart from the trait and its strength (alpha)."""

    name: str
    heads: str | int  # "soft" (accuracy-weighted, all heads) or K (the K best heads at weight 1)
    direction: (
        str  # "auto", "probe" (unit probe weights), "mass_mean" (unit class-mean difference), "denoised"
    )
    every: int  # edit every N-th generation step
    monitor: bool  # self-monitoring: stop pushing while the probes read the trait as present
    summary: str
    threshold: float | str = (
        "paper"  # the monitor's tau: "paper" (median - std of acc.), "positive", a number
    )
    edit: str = (
        "shift"  # "shift": alpha * sigma along theta; "bounded": to the class-mean reading, no further
    )

    def steer_kwargs(self) -> dict[str, Any]:
        """The `Steer` fields this recipe sets."""
        return {
            "heads": self.heads,
            "direction": self.direction,
            "monitor": self.monitor,
            "threshold": self.threshold,
            "edit": self.edit,
        }


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "smitin",
            16,
            "auto",
            1,
            True,
            "top-16 heads, class-mean direction unless noise moves it (then probe weights), every step, "
            "monitored (default)",  # part of row keys
            "positive",
        ),
        Recipe(
            "paper",
            "soft",
            "probe",
            5,
            True,
            "the paper's: soft accuracy weights, probe-weight direction, every 5th step, monitored",
        ),
        Recipe("iti", 16, "mass_mean", 1, False, "plain ITI: top-16 heads, class-mean direction, no monitor"),
    )
}
DEFAULT_RECIPE = "smitin"


def parse_heads(text: str | int | None, default: str | int | None = None) -> str | int:
    """A head choice as typed (CLI flag or studio field): 'soft', or K >= 1 best heads.

    Empty or None gives `default` (the default recipe's heads when not given); anything else is a
    ValueError that says what is allowed.
    """
    if text is None or str(text).strip() == "":
        return RECIPES[DEFAULT_RECIPE].heads if default is None else default
    spec = str(text).strip()
    if spec == "soft":
        return spec
    try:
        k = int(spec)
    except ValueError:
        raise ValueError(f"heads must be 'soft' or a number of heads, not {spec!r}") from None
    if k < 1:
        raise ValueError(f"heads must be 'soft' or a positive number, not {k}")
    return k


def check_heads(heads: str | int, layers: int, per_layer: int, model: str = "the model") -> str | int:
    """Refuse a K given by the user above the model's heads (`layers` x `per_layer`). The CLI and the
    studio both check with this; a recipe's own K, not given, is capped instead (a small model has
    fewer than 16 heads)."""
    total = layers * per_layer
    if isinstance(heads, int) and heads > total:
        raise ValueError(
            f"heads must be 'soft' or 1..{total} ({layers} layers x {per_layer} heads in {model}), not {heads}"
        )
    return heads


def recipe(name: str) -> Recipe:
    """The recipe called `name`; a ValueError lists the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, not {name!r}") from None


MAX_ALPHA = 100.0  # the paper's strengths are 5-20 standard deviations; 100 already drowns the heads


def check_alpha(alpha: float | str) -> float:
    """A steering strength: finite, |alpha| <= MAX_ALPHA (negative removes the trait); else ValueError."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"strength must be a number (e.g. 5, or -5 to remove), not {alpha!r}") from None
    if not math.isfinite(value) or abs(value) > MAX_ALPHA:
        raise ValueError(
            f"strength must be a finite number between -{MAX_ALPHA:g} and {MAX_ALPHA:g} "
            f"(the paper uses 5 to 20), not {alpha!r}"
        )
    return value


THRESHOLDS = ("paper", "positive")  # tau from the probes: median(acc) - std(acc), or C at the positive mean


def check_threshold(threshold: float | str | None) -> float | str | None:
    """A monitor threshold tau as given: None or "" (not given: the recipe's), "paper" or "auto"
    (median(acc) - std(acc), the paper's), "positive" (what the watched heads read on the trait's
    class mean, smitin's default), or a probability strictly in (0, 1)."""
    if threshold is None or (isinstance(threshold, str) and threshold.strip() == ""):
        return None
    if isinstance(threshold, str) and threshold.strip().lower() in ("auto", "paper"):
        return "paper"
    if isinstance(threshold, str) and threshold.strip().lower() == "positive":
        return "positive"
    try:
        value = float(threshold)
    except ValueError:
        raise ValueError(
            f"threshold must be a probability in (0, 1), 'paper' or 'positive', not {threshold!r}"
        ) from None
    if not (0.0 < value < 1.0):
        raise ValueError(
            f"threshold must be a probability strictly between 0 and 1 (e.g. 0.6), not {threshold!r}"
        )
    return value
