"""A browser session's settings and the helpers that read them: probe files, sliders, steers.

A `Session` outlives one request (the model name and the loaded probe files); it is frozen, so
every change makes a new one and `gr.State`'s per-session copies never share anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..lanes import Lane, LaneError, check_lanes, parse_lane_args
from ..options import GenerationOptions
from ..probes import ProbeFileError, ProbeSet
from ..recipes import DEFAULT_RECIPE, RECIPES, check_alpha, check_heads
from ..steering import Steer

if TYPE_CHECKING:
    from ..backbone import Backbone

MAX_TRAITS = 4  # strength-slider slots; more probe files than this are refused with a message
ALPHA_RANGE = 10.0
MAX_LANES_CHARS = 10_000  # the lanes field: a few lines per trait
DEFAULT_ALPHA = 5.0


@dataclass(frozen=True)
class ProbeEntry:
    """One loaded probe file: the trait it reads and where it lies."""

    trait: str
    path: str


@dataclass(frozen=True)
class Session:
    """The model a session uses and its probe files (one per trait, at most MAX_TRAITS)."""

    model: str
    probes: tuple[ProbeEntry, ...] = ()

    def with_model(self, model: str) -> Session:
        return replace(self, model=model)

    def cleared(self) -> Session:
        """The same session with no probe files."""
        return replace(self, probes=())


def new_session(model: str, probe_paths: Sequence[str | Path] = ()) -> Session:
    """A session's settings that outlive one request: the model name and the loaded probe files."""
    return add_probes(Session(str(model)), probe_paths)[0]


def add_probes(session: Session, paths: Sequence[str | Path]) -> tuple[Session, list[str]]:
    """Return a new session with the readable probe files added (a trait loaded again is replaced).

    Messages say what was skipped and why; the given session is not modified.
    """
    probes = list(session.probes)
    messages = []
    for raw in paths:
        path = str(raw).strip()
        if not path:
            continue
        try:
            trait = ProbeSet.load(path).trait
        except ProbeFileError as err:
            messages.append(str(err))
            continue
        probes = [p for p in probes if p.trait != trait]
        if len(probes) >= MAX_TRAITS:
            messages.append(f"{path}: at most {MAX_TRAITS} traits at once; clear some first")
            continue
        probes.append(ProbeEntry(trait, path))
    return replace(session, probes=tuple(probes)), messages


def load_probe_sets(session: Session, backbone: Backbone | None = None) -> list[ProbeSet]:
    """The session's probe files, read (and checked against `backbone`'s head layout if given)."""
    return [ProbeSet.load(p.path, backbone) for p in session.probes]


def parse_paths(text: str) -> list[str]:
    """Paths typed one per line or separated by commas."""
    return [p.strip() for line in (text or "").splitlines() for p in line.split(",") if p.strip()]


def parse_threshold(text: str | float | None) -> float | str | None:
    """'' -> the default recipe's ('positive': C at the trait's class mean); 'paper' or 'auto' ->
    the paper's median(acc) - std(acc); 'positive'; else a number in (0, 1)."""
    if text is None or str(text).strip() == "":
        return RECIPES[DEFAULT_RECIPE].threshold
    if str(text).strip().lower() in ("auto", "paper"):
        return "paper"
    if str(text).strip().lower() == "positive":
        return "positive"
    value = float(text)
    if not 0 < value < 1:
        raise ValueError(f"threshold must be between 0 and 1 (or 'positive' or 'paper'), not {value}")
    return value


def slider_updates(session: Session, previous: Sequence[float] = ()) -> list[dict[str, Any]]:
    """One update per slider slot: shown and named for each loaded trait, hidden otherwise."""
    out: list[dict[str, Any]] = []
    for i in range(MAX_TRAITS):
        if i < len(session.probes):
            trait = session.probes[i].trait
            value = previous[i] if i < len(previous) else DEFAULT_ALPHA
            out.append({"visible": True, "label": f"{trait}: remove (-) / add (+)", "value": value})
        else:
            out.append({"visible": False, "value": 0.0})
    return out


def probe_table(session: Session) -> str:
    """Markdown list of the session's probe files."""
    if not session.probes:
        return "No probe files loaded: generation runs unsteered. Upload one, or train one below."
    return "\n".join(f"- **{p.trait}**: `{p.path}`" for p in session.probes)


def build_steers(
    probes: Sequence[ProbeSet],
    alphas: Sequence[float],
    *,
    monitor: bool = True,
    threshold: float | str | None = RECIPES[DEFAULT_RECIPE].threshold,
    heads: str | int = RECIPES[DEFAULT_RECIPE].heads,
    direction: str = RECIPES[DEFAULT_RECIPE].direction,
    lanes: Mapping[str, Lane] | None = None,
) -> list[Steer]:
    """One Steer per probe set; alpha 0 keeps the trait monitored (its C(t) is plotted) but unpushed.

    `lanes` (trait -> Lane, see `parse_lanes`) give the traits that have one their automation.
    """
    lanes = lanes or {}
    if probes and isinstance(heads, int) and heads != RECIPES[DEFAULT_RECIPE].heads:
        lay = probes[0].layout  # the field's recipe value is capped on a small model, as the CLI does
        check_heads(heads, lay.layers, lay.heads, str(probes[0].meta.get("model", "the model")))
    for a in alphas:
        check_alpha(a)
    return [
        Steer(
            p,
            alpha=float(a),
            heads=heads,
            monitor=monitor,
            threshold=threshold,
            direction=direction,
            lane=lanes.get(p.trait),
        )
        for p, a in zip(probes, alphas, strict=False)
    ]


def parse_lanes(
    text: str | None,
    traits: Sequence[str],
    duration: float,
    strengths: Mapping[str, float] | None = None,
) -> dict[str, Lane]:
    """The studio's lane field: one lane per line (or ';'), as the CLI's --lane, checked (against
    the traits' strengths too, when given); LaneError if bad."""
    if len(text or "") > MAX_LANES_CHARS:
        raise LaneError(f"the lanes field holds {len(text or ''):,} characters; at most {MAX_LANES_CHARS:,}")
    items = [x.strip() for line in (text or "").splitlines() for x in line.split(";") if x.strip()]
    lanes = parse_lane_args(items)
    check_lanes(lanes, traits, duration, strengths)
    return lanes


def page_options(
    duration: Any, seed: Any, guidance: Any, every: Any, rows: Any, gain: Any
) -> GenerationOptions:
    """The page's generation fields as the CLI's options, with the same bounds (one checked set:
    `GenerationOptions`); a ValueError names the field (never an OverflowError or TypeError)."""
    values: dict[str, Any] = {}
    for name, value, kind in (
        ("duration", duration, float),
        ("seed", seed, int),
        ("guidance_scale", guidance, float),
        ("every", every, int),
    ):
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            values[name] = value  # exact: a float would round seeds near 2**63
            continue
        try:
            number = float(value)
            if kind is int:
                if not number.is_integer():
                    raise ValueError
                number = int(number)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{name} must be a number, not {value!r}"[:200]) from None
        values[name] = number
    return GenerationOptions(**values, rows=rows, gain=gain)


def lanes_message(text: str | None, traits: Sequence[str], duration: float) -> str:
    """What the page says under the lane field as it is typed: the lanes understood, or the problem."""
    try:
        lanes = parse_lanes(text, traits, duration)
    except LaneError as err:
        return f"**lanes:** {err}; nothing runs until this is fixed"
    if not lanes:
        return "no lanes: every trait is steered for the whole clip"
    return "lanes: " + "; ".join(f"{t} {lane}" for t, lane in lanes.items())


def unsteered(steers: Sequence[Steer]) -> list[Steer]:
    """The same traits with alpha 0: identical audio to no steering, and the natural C(t)."""
    return [replace(s, alpha=0.0) for s in steers]
