"""Trait automation: when each trait should be there, as a piecewise lane over the generated time.

A `Lane` is a list of `Span`s, each over [start, end) seconds of NEW audio (a continuation's
time starts after the prompt), wanting the trait present (`add`), absent (`remove`), left
alone (`free`: no edit) or held where it is (`keep`: watched, and pushed back only when the
probes read it falling below the threshold; no push before the first reading, never one past
the threshold). Outside every span the trait keeps its constant behaviour (its alpha's sign, or
held when its `Steer` keeps it, monitored as without a lane). An optional `ramp` (seconds) crossfades the push from one
state to the next at every change.

Written as text (the CLI's `--lane`, the studio's field)::

    drums=0-3:remove,3-6:add,6-8:free          # TRAIT=START-END:WANT,...
    piano=0-4:add,4-8:remove,ramp=0.5          # a 0.5 s crossfade at each change
    piano=0-6:keep                              # hold the prompt's piano, push only if it fades
    bass=0-2:add,2-8:add*2.5                   # from 2 s on, pushed with strength 2.5 (|alpha|)

or as JSON (`--lanes lanes.json`), one entry per trait: a lane string, a list of
`[start, end, want]` (or `[start, end, want, strength]`), or `{"spans": [...], "ramp": 0.5}`.

Parsing and checking here need no torch (the command line checks its flags before loading a
model); `layout` lays the lanes out once per generation as per-step tensors for
`smitin.steering`, which indexes them by step on the device.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

WANTS = ("add", "remove", "free", "keep")
SYNTAX = (
    "TRAIT=START-END:WANT,... (seconds of new audio; WANT is add, remove, free or keep, optionally "
    "*STRENGTH; optional ramp=SECONDS)"
)
WISH = {"add": 1, "remove": -1, "free": 0, "keep": 2}  # per-step wish codes (`Laid.want`, `Trace.want`)
_PUSH = {
    "add": 1.0,
    "remove": -1.0,
    "free": 0.0,
    "keep": 1.0,
}  # a wish as a push: keep pushes in when it pushes
_EPS = 1e-9
MAX_SECONDS = 3600.0  # any time in a lane (MusicGen makes at most about 40 s): bounds the arithmetic
MAX_FILE_BYTES = 1 << 20  # a lanes file: a few hundred bytes per trait are plenty


class LaneError(ValueError):
    """A lane that cannot be used; the message names the problem and the span or trait."""


def _seconds(x: float) -> str:
    return f"{x:g}"


def _seconds_ok(v: Any) -> bool:
    """A real number of seconds within +-MAX_SECONDS (huge ints are compared, never converted)."""
    return (
        not isinstance(v, bool)
        and isinstance(v, (int, float))
        and -MAX_SECONDS <= v <= MAX_SECONDS  # False for NaN
    )


def _cut(text: str, most: int = 40, quote: bool = True) -> str:
    """A (quoted) piece of what the user wrote, cut short (a message never repeats a huge input)."""
    show = repr if quote else str
    return show(text) if len(text) <= most else show(text[:most]) + f"... ({len(text)} characters)"


def _short(value: Any) -> str:
    """repr, cut short: a message never quotes ten thousand digits."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


@dataclass(frozen=True)
class Span:
    """[start, end) seconds of new audio wanting the trait present (add), absent (remove), alone
    (free) or held (keep).

    strength: the push's |alpha| in this span (None: the trait's own alpha); how a live change of
    strength is written down, and how it is scheduled ahead (`0-3:add,3-6:add*2.5`).
    """

    start: float
    end: float
    want: str
    strength: float | None = None

    def __post_init__(self) -> None:
        for name, v in (("start", self.start), ("end", self.end)):
            if not _seconds_ok(v):
                raise LaneError(
                    f"span {self}: {name} must be a number of seconds up to {MAX_SECONDS:g}, not {_short(v)}"
                )
        if self.want not in WANTS:
            raise LaneError(
                f"span {self}: unknown word {self.want!r}; a span wants add, remove, free or keep"
            )
        if self.start < 0:
            raise LaneError(f"span {self}: starts before 0 s (times are seconds of new audio)")
        if self.end <= self.start:
            raise LaneError(
                f"span {self}: ends ({_seconds(self.end)} s) before it starts ({_seconds(self.start)} s)"
            )
        if self.strength is not None and (
            isinstance(self.strength, bool)
            or not isinstance(self.strength, (int, float))
            or not (math.isfinite(self.strength) and self.strength >= 0)
        ):
            raise LaneError(f"span {self}: the strength must be a number >= 0, not {self.strength!r}")

    def __str__(self) -> str:
        start = _seconds(self.start) if _seconds_ok(self.start) else _short(self.start)
        end = _seconds(self.end) if _seconds_ok(self.end) else _short(self.end)
        want = self.want if isinstance(self.want, str) and len(self.want) <= 40 else _short(self.want)
        return f"'{start}-{end}:{want}{self._times}'"

    @property
    def _times(self) -> str:
        if self.strength is None:
            return ""
        return f"*{_seconds(self.strength) if _seconds_ok(self.strength) else _short(self.strength)}"

    @property
    def text(self) -> str:
        return f"{_seconds(self.start)}-{_seconds(self.end)}:{self.want}{self._times}"


@dataclass(frozen=True)
class Lane:
    """One trait's automation: spans in time order, none overlapping, and a crossfade time `ramp`."""

    spans: tuple[Span, ...]
    ramp: float = 0.0

    def __post_init__(self) -> None:
        spans = tuple(self.spans)
        if not spans:
            raise LaneError(f"a lane needs at least one span: {SYNTAX}")
        if not _seconds_ok(self.ramp) or self.ramp < 0:
            raise LaneError(
                f"ramp must be a number of seconds from 0 to {MAX_SECONDS:g}, not {_short(self.ramp)}"
            )
        ordered = tuple(sorted(spans, key=lambda s: (s.start, s.end)))
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.start < a.end - _EPS:
                raise LaneError(
                    f"spans {a} and {b} overlap ({_seconds(b.start)}-{_seconds(min(a.end, b.end))} s); "
                    "each moment may have one wish"
                )
        object.__setattr__(self, "spans", ordered)

    @classmethod
    def of(cls, value: Lane | str | Sequence[Any] | Mapping[str, Any]) -> Lane:
        """A lane from what people write: a Lane, `"0-3:remove,3-6:add"`, `[(0, 3, "remove"), ...]`,
        or `{"spans": [...], "ramp": 0.5}`."""
        if isinstance(value, Lane):
            return value
        if isinstance(value, str):
            return parse_lane(value)
        if isinstance(value, Mapping):
            unknown = set(value) - {"spans", "ramp"}
            if unknown or "spans" not in value:
                raise LaneError(f"a lane object has keys 'spans' and optionally 'ramp', not {sorted(value)}")
            return cls(cls.of(value["spans"]).spans, value.get("ramp", 0.0))
        if isinstance(value, (list, tuple)):
            return cls(tuple(_span(s) for s in value))
        raise LaneError(f"cannot read a lane from {type(value).__name__} {value!r}: {SYNTAX}")

    def check(self, duration: float, trait: str = "") -> Lane:
        """Refuse spans past the clip's `duration` seconds of new audio; returns the lane."""
        last = self.spans[-1]
        if last.end > duration + _EPS:
            who = f"{trait}: " if trait else ""
            raise LaneError(
                f"{who}span {last} ends at {_seconds(last.end)} s, past the end of the clip "
                f"({_seconds(duration)} s of new audio)"
            )
        return self

    def window(self, start: float, length: float) -> Lane | None:
        """The part of the lane over [start, start + length) seconds, timed from `start` (None if empty).

        A stream that keeps going past the model's positions generates window after window; each
        window's steering sees the lane from where the window starts.
        """
        spans = [
            Span(max(0.0, s.start - start), min(length, s.end - start), s.want, s.strength)
            for s in self.spans
            if s.end - start > _EPS and s.start - start < length - _EPS
        ]
        return Lane(tuple(spans), self.ramp) if spans else None

    def want_at(self, t: float) -> str | None:
        """The span's wish at time t (seconds of new audio); None outside every span."""
        for s in self.spans:
            if s.start <= t < s.end:
                return s.want
        return None

    def __str__(self) -> str:
        text = ",".join(s.text for s in self.spans)
        return text + (f",ramp={_seconds(self.ramp)}" if self.ramp else "")


def _span(item: Any) -> Span:
    if isinstance(item, Span):
        return item
    if isinstance(item, Mapping):
        try:
            return Span(item["start"], item["end"], item["want"], item.get("strength"))
        except KeyError as err:
            raise LaneError(f"span {dict(item)} has no {err.args[0]!r}; give start, end and want") from None
    if isinstance(item, (list, tuple)) and len(item) in (3, 4):
        return Span(*item)
    raise LaneError(f"a span is (start, end, want[, strength]), e.g. (0, 3, 'remove'), not {item!r}")


def _number(text: str, what: str, item: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise LaneError(f"span {_cut(item)}: {what} {_cut(text)} is not a number of seconds") from None
    if not _seconds_ok(v):
        raise LaneError(
            f"span {_cut(item)}: {what} {_cut(text)} is not a number of seconds up to {MAX_SECONDS:g}"
        )
    return v


def parse_lane(text: str) -> Lane:
    """`"0-3:remove,3-6:add,6-8:free[,ramp=0.5]"` -> Lane (no trait name: the studio's per-trait field)."""
    if not isinstance(text, str) or not text.strip():
        raise LaneError("empty lane: write START-END:WANT,... e.g. 0-3:remove,3-6:add")
    spans, ramp = [], 0.0
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise LaneError(f"empty span in {_cut(text)} (two commas in a row, or a trailing comma)")
        if item.startswith("ramp"):
            key, eq, value = item.partition("=")
            if key.strip() != "ramp" or not eq:
                raise LaneError(f"{_cut(item)}: write ramp=SECONDS")
            try:
                ramp = float(value)
            except ValueError:
                raise LaneError(
                    f"{_cut(item)}: the ramp {_cut(value.strip())} is not a number of seconds"
                ) from None
            continue
        times, colon, want = item.partition(":")
        if not colon:
            raise LaneError(f"span {_cut(item)} has no ':WANT'; write START-END:WANT, e.g. 0-3:remove")
        want, star, times_text = want.strip().lower().partition("*")
        want = want.strip()
        strength = _number(times_text, "strength", item) if star else None
        start, dash, end = times.strip().partition("-")
        if not dash or not start.strip() or not end.strip():
            raise LaneError(f"span {_cut(item)}: write the time as START-END in seconds, e.g. 0-3")
        if want not in WANTS:
            raise LaneError(
                f"span {_cut(item)}: unknown word {_cut(want)}; a span wants add, remove, free or keep"
            )
        spans.append(Span(_number(start, "start", item), _number(end, "end", item), want, strength))
    if not spans:
        raise LaneError(f"lane {_cut(text)} has no spans, only a ramp: {SYNTAX}")
    return Lane(tuple(spans), ramp)


def parse_lane_arg(text: str) -> tuple[str, Lane]:
    """One `--lane` value, `"drums=0-3:remove,3-6:add"` -> ("drums", Lane)."""
    trait, eq, rest = text.partition("=")
    trait = trait.strip()
    if not eq or not trait or ":" in trait:
        raise LaneError(f"--lane {_cut(text)}: name the trait first: {SYNTAX}, e.g. drums=0-3:remove,3-6:add")
    try:
        return trait, parse_lane(rest)
    except LaneError as err:
        raise LaneError(f"--lane {_cut(trait, quote=False)}: {err}") from None


def parse_lane_args(values: Iterable[str]) -> dict[str, Lane]:
    """Repeated `--lane` values -> {trait: Lane}; a trait given twice is refused."""
    out: dict[str, Lane] = {}
    for text in values:
        trait, lane = parse_lane_arg(text)
        if trait in out:
            raise LaneError(
                f"--lane {_cut(trait, quote=False)} is given twice; put all of its spans in one --lane"
            )
        out[trait] = lane
    return out


def lanes_from_json(data: Any, source: str = "lanes") -> dict[str, Lane]:
    """{trait: lane} from decoded JSON: each lane a string, a list of [start, end, want] or {"spans", "ramp"}."""
    if not isinstance(data, Mapping):
        raise LaneError(
            f'{source}: the top level must be an object {{"TRAIT": LANE, ...}}, not {type(data).__name__}'
        )
    out = {}
    for trait, value in data.items():
        try:
            out[str(trait)] = Lane.of(value)
        except LaneError as err:
            raise LaneError(f"{source}: {_cut(str(trait), quote=False)}: {err}") from None
    return out


def load_lanes(path: str | Path) -> dict[str, Lane]:
    """A lanes file (`--lanes lanes.json`) -> {trait: Lane}; refused: missing, not a regular file,
    over MAX_FILE_BYTES, not UTF-8, not JSON, nested too deeply or holding out-of-range numbers."""
    from .textfiles import TextFileError, loads, read_text

    path = Path(path)
    try:
        data = loads(read_text(path, "lanes file", MAX_FILE_BYTES), str(path))
    except json.JSONDecodeError as err:
        raise LaneError(f"{path} is not JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
    except TextFileError as err:
        raise LaneError(str(err)) from None
    return lanes_from_json(data, str(path))


def check_lanes(
    lanes: Mapping[str, Lane],
    steered: Iterable[str],
    duration: float | None = None,
    strengths: Mapping[str, float] | None = None,
) -> None:
    """Every lane names a steered trait (as in its probe file) and, given `duration`, fits in the
    clip; given the traits' `strengths`, a lane that wants add or remove needs a non-zero one."""
    names = list(steered)
    for trait, lane in lanes.items():
        if trait not in names:
            have = ", ".join(names) if names else "none"
            raise LaneError(f"a lane for {_short(trait)}, which is not steered (steered traits: {have})")
        if duration is not None:
            lane.check(duration, trait)
        pushing = [s for s in lane.spans if s.want != "free"]
        if strengths is not None and strengths.get(trait, 1.0) == 0 and pushing:
            raise LaneError(
                f"{trait}: span {pushing[0]} wants the trait {'present' if pushing[0].want == 'add' else 'absent'}, "
                "but its strength is 0, so nothing would push; give it a strength (e.g. FILE:5)"
            )


@dataclass
class Laid:
    """Lanes laid out per step [steps, traits] (`layout`): what the steering hook indexes by step.

    scale: |push| in [0, 1] (1 outside lanes, 0 in free spans, between on a ramp); sign: +1 or -1,
    the push's direction relative to the trait's alpha; remove: monitor 1 - C (the trait wanted
    absent); want: the wish (`WISH`), +1 add, -1 remove, 0 free, 2 keep (the trait's own
    behaviour outside lanes); hold: the step keeps the trait (monitored even with the monitor
    off, and no push before the first reading).
    """

    scale: torch.Tensor
    sign: torch.Tensor
    remove: torch.Tensor
    want: torch.Tensor
    hold: torch.Tensor


def layout(
    lanes: Sequence[Lane | None],
    alphas: Sequence[float],
    steps: int,
    frame_rate: float,
    duration: float | None = None,
    keeps: Sequence[bool] | None = None,
    refs: Sequence[float] | None = None,
) -> Laid:
    """Per step and trait: the lane's push, laid out once before generation (on the CPU).

    Step s is new frame s (time s / frame_rate); a span ending at `duration` also covers the steps
    after it (the delay pattern's last codebooks of the clip's last frames). A trait without a lane,
    or a step outside its spans, gets its constant behaviour: held when `keeps` says so, else
    scale 1, sign +1, remove = alpha < 0. `refs` are the alphas the steering's shifts were built
    with (default: `alphas`); a span's strength, or another alpha than the ref (a live change),
    scales the push by |strength| / |ref|.
    """
    import torch

    n = len(lanes)
    keeps = list(keeps) if keeps is not None else [False] * n
    if len(alphas) != n or len(keeps) != n:
        raise ValueError(f"{n} lanes for {len(alphas)} traits ({len(keeps)} keep flags)")
    refs = list(alphas) if refs is None else list(refs)
    own = torch.tensor([-1.0 if a < 0 else 1.0 for a in alphas])  # [T] the trait's constant direction
    ref_sign = torch.tensor([-1.0 if r < 0 else 1.0 for r in refs])  # [T] the direction the shift carries

    def factor(t: int, strength: float | None) -> float:
        """|push| relative to the shift's: exactly 1.0 for the trait's own alpha (bit-identical pushes)."""
        magnitude = abs(alphas[t]) if strength is None else abs(strength)
        return magnitude / abs(refs[t]) if refs[t] != 0 else 1.0

    own_wish = [WISH["keep"] if k else int(o) for k, o in zip(keeps, own.tolist(), strict=True)]
    wish = torch.tensor(own_wish, dtype=torch.long).repeat(steps, 1)  # [steps, T] WISH codes
    own_push = torch.tensor([float(own[t]) * factor(t, None) for t in range(n)])
    target = own_push.repeat(steps, 1)  # [steps, T] wished push: > 0 present, < 0 absent, 0 free
    value = own_push.repeat(steps, 1)  # the push after ramps, in absolute direction
    for t, lane in enumerate(lanes):
        if lane is None:
            continue
        for span in lane.spans:
            a = round(span.start * frame_rate)
            b = (
                steps
                if duration is not None and span.end >= duration - _EPS
                else round(span.end * frame_rate)
            )
            wish[a:b, t] = WISH[span.want]
            target[a:b, t] = _PUSH[span.want] * factor(t, span.strength)
        col = target[:, t].tolist()
        out, ramp = list(col), max(1, round(lane.ramp * frame_rate))
        start: int | None = None  # the step of the last change, once there was one
        frm = 0.0
        for s in range(1, steps if lane.ramp > 0 else 0):
            if col[s] != col[s - 1]:  # a change: fade from where the push is now
                start, frm = s, out[s - 1]
            if start is not None:
                out[s] = frm + (col[s] - frm) * min(1.0, (s - start + 1) / ramp)
        value[:, t] = torch.tensor(out)
    relative = value * ref_sign  # relative to the shift, which carries the ref alpha's sign
    # the monitor watches the wish; in a free span (no edit) the push's own fading direction
    remove = torch.where(target != 0, target < 0, torch.where(value != 0, value < 0, own < 0))
    return Laid(
        scale=relative.abs(),
        sign=torch.where(relative < 0, -1.0, 1.0),
        remove=remove,
        want=wish.to(torch.int8),
        hold=wish == WISH["keep"],
    )
