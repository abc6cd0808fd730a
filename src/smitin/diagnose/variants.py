"""Push variants: how hard, where and how the diagnosis pushes, written as NAME:KEY=VALUE,...

Keys: alpha, heads (K or soft), direction (mass_mean, probe, or denoised: the class-mean direction
with its component along the heads' response to white noise removed, `directions.denoised`), blind
(1: the monitor reads with probe weights made blind to that noise response, `directions.blind_monitor`),
monitor (0/1), threshold
(positive, paper or a probability), edit (shift, bounded), every, rows (both, cond), layers (the
layers whose heads may be pushed, e.g. 0-1 or 3), temperature and top_k (sampling), keep (1: also
hold the other traits given to `--keep`, with keep-mode steers at the same alpha and edit). Anything
not given is smitin's recipe at --alpha. Plain parsing (no torch), so a bad --variant fails
before the model loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..options import EDITS, ROWS
from ..recipes import check_alpha, check_threshold, parse_heads

STEER_KEYS = ("alpha", "heads", "direction", "monitor", "threshold", "edit", "blind")
OPTION_KEYS = ("every", "rows")
SAMPLING_KEYS = ("temperature", "top_k")


@dataclass(frozen=True)
class Variant:
    """One way to generate: Steer keywords (None: unsteered), pushed layers, options, sampling."""

    name: str
    steer: dict[str, Any] | None = field(default_factory=dict)
    layers: tuple[int, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    sampling: dict[str, Any] = field(default_factory=dict)
    hold: bool = False  # also hold the watched other traits (`--keep`) with keep-mode steers

    def unsteered(self) -> Variant:
        """The same sampling without steering: this variant's pair."""
        return Variant(f"none ({self.sampling_text()})", None, (), {}, self.sampling)

    def sampling_text(self) -> str:
        return ", ".join(f"{k} {v:g}" for k, v in sorted(self.sampling.items())) or "default sampling"


def _layers(text: str) -> tuple[int, ...]:
    lo, dash, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi) if dash else int(lo)
    except ValueError:
        raise ValueError(f"layers must be L or L1-L2 (0-based), not {text!r}") from None
    if a < 0 or b < a:
        raise ValueError(f"layers must be L or L1-L2 with 0 <= L1 <= L2, not {text!r}")
    return tuple(range(a, b + 1))


def _value(key: str, text: str) -> Any:
    if key == "alpha":
        return check_alpha(text)
    if key == "heads":
        return parse_heads(text)
    if key == "direction":
        if text not in ("auto", "mass_mean", "probe", "denoised"):
            raise ValueError(f"direction must be auto, mass_mean, probe or denoised, not {text!r}")
        return text
    if key in ("monitor", "blind"):
        if text not in ("0", "1"):
            raise ValueError(f"{key} must be 0 or 1, not {text!r}")
        return text == "1"
    if key == "threshold":
        return check_threshold(text)
    if key == "edit":
        if text not in EDITS:
            raise ValueError(f"edit must be one of {', '.join(EDITS)}, not {text!r}")
        return text
    if key == "rows":
        if text not in ROWS:
            raise ValueError(f"rows must be one of {', '.join(ROWS)}, not {text!r}")
        return text
    try:
        value = int(text) if key in ("every", "top_k") else float(text)
    except ValueError:
        raise ValueError(f"{key} must be a number, not {text!r}") from None
    if value <= 0 or (key == "every" and value < 1):
        raise ValueError(f"{key} must be positive, not {text!r}")
    return value


def parse_variant(spec: str) -> Variant:
    """`"bounded10:alpha=10,edit=bounded"` -> Variant; a ValueError names the bad part."""
    name, colon, rest = spec.partition(":")
    if not colon or not name.strip():
        raise ValueError(f"--variant {spec!r}: write NAME:KEY=VALUE,..., e.g. strong:alpha=10,heads=32")
    steer: dict[str, Any] = {}
    options: dict[str, Any] = {}
    sampling: dict[str, Any] = {}
    layers: tuple[int, ...] = ()
    hold = False
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, text = (p.strip() for p in item.partition("="))
        if not eq:
            raise ValueError(f"--variant {spec!r}: {item!r} is not KEY=VALUE")
        try:
            if key == "layers":
                layers = _layers(text)
            elif key == "keep":
                if text not in ("0", "1"):
                    raise ValueError(f"keep must be 0 or 1, not {text!r}")
                hold = text == "1"
            elif key in STEER_KEYS:
                steer[key] = _value(key, text)
            elif key in OPTION_KEYS:
                options[key] = _value(key, text)
            elif key in SAMPLING_KEYS:
                sampling[key] = _value(key, text)
            else:
                known = ", ".join((*STEER_KEYS, *OPTION_KEYS, *SAMPLING_KEYS, "layers", "keep"))
                raise ValueError(f"unknown key {key!r}; known: {known}")
        except ValueError as err:
            raise ValueError(f"--variant {spec!r}: {err}") from None
    return Variant(name.strip(), steer, layers, options, sampling, hold)


def push_variants(alpha: float, layers: int, hold: bool = False) -> list[Variant]:
    """How hard, how many heads, where, and how: smitin's recipe with one thing changed at a time.

    Layers are tried in up to four contiguous groups (each its 8 best heads), so a 48-layer model
    costs no more than the bundled 4-layer one. With `hold` (other traits given to `--keep`), the
    recipe and the bounded edit are also tried holding them.
    """
    out = [Variant(f"alpha {a:g}", {"alpha": a}) for a in (alpha / 5, alpha / 2, alpha, 2 * alpha, 4 * alpha)]
    out += [Variant(f"heads {k}", {"heads": k}) for k in (4, 8, 32)] + [
        Variant("soft heads", {"heads": "soft"})
    ]
    groups = min(4, layers)
    for g in range(groups):
        lo, hi = g * layers // groups, (g + 1) * layers // groups - 1
        out.append(
            Variant(f"layers {lo}-{hi}" if hi > lo else f"layer {lo}", {"heads": 8}, tuple(range(lo, hi + 1)))
        )
    out += [
        Variant(f"bounded alpha {a:g}", {"alpha": a, "edit": "bounded"})
        for a in (alpha, 2 * alpha, 4 * alpha)
    ]
    out += [
        Variant("every 5th step", {}, (), {"every": 5}),
        Variant("no monitor", {"monitor": False}),
        Variant("probe direction", {"direction": "probe"}),
        Variant("paper threshold", {"threshold": "paper"}),
    ]
    if hold:
        out += [
            Variant(f"alpha {alpha:g}, keep others", {}, hold=True),
            Variant(f"alpha {2 * alpha:g}, keep others", {"alpha": 2 * alpha}, hold=True),
            Variant(f"bounded alpha {alpha:g}, keep others", {"edit": "bounded"}, hold=True),
        ]
    return out


def sampling_variants() -> list[Variant]:
    """Temperature and top-k, each steered with smitin's recipe (each paired with its own unsteered)."""
    return [
        Variant(f"steered, {text}", {}, (), {}, sampling)
        for text, sampling in (
            ("temperature 0.7", {"temperature": 0.7}),
            ("temperature 1", {"temperature": 1.0}),
            ("temperature 1.3", {"temperature": 1.3}),
            ("top-k 50", {"top_k": 50}),
            ("top-k 250", {"top_k": 250}),
        )
    ]
