"""The keeping headline: what each row keeps of the music, pair by pair against no control.

Presence (`headline`) says whether the trait was added; this says what it cost (issue 22). For
each row, against the no-control clip of the same prompt and seed (`headline.pair_clips`):

- per other instrument (each trait judged in the run other than the row's own): among the pairs
  whose no-control clip has it (judge B by default, A in the CSV), the share where the steered
  clip still has it (retention) and the mean change of that judge's probability;
- harmonic continuity to the prompt, pulse clarity, spectral flatness (`keep`) and whether the
  prompt's tempo was kept: the row's mean, no control's, and the paired difference.

Every difference carries a 95% bootstrap interval over prompts (`stats.bootstrap_diff`). Beside
the rows stand three references: the noise floor (no control against itself: the two seeds of one
prompt), the true continuation of each prompt's song with the trait's rendered stem added (or,
for removal, taken away) through the codec (the ceiling: what adding the instrument really does
to every measure), the unsteered model's continuation against that true continuation (what the
model keeps by itself: issue 23's continuation quality), and the model's own text rows
(text-to-music naming the instrument vs not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import LABELS, Config
from .headline import JUDGES, Clip, Entry, Row, _alpha, judge_paired, pair_clips
from .noise import equivalent_level
from .stats import bootstrap_diff

MEASURES = {
    "continuity": "harmonic continuity",
    "pulse": "pulse clarity",
    "flatness": "flatness",
    "tempo_kept": "tempo kept",
}
KEEP_JUDGES = ("cnn", "clf")  # the first is the table's; all go to results.csv
FLOOR = "none (another seed)"  # the noise floor: no control against no control
STEM = "stem"  # reference: the rendered stem added to (removed from) the true continuation
TRUE = "true"  # its base: the song's own continuation through the codec
MODEL = "none vs true"  # reference: the unsteered model's continuation against the song's own
REFERENCE_LABELS = {
    FLOOR: "no control, another seed (noise floor)",
    STEM: "rendered stem added (ceiling)",
    MODEL: "no control vs the song's own continuation",
}


@dataclass
class Measured:
    """One keep measure of a row against its base, pair by pair."""

    value: float  # the row's mean
    base: float  # the base's mean over the same pairs
    diff: float  # mean paired difference (row - base)
    low: float  # 95% bootstrap interval of diff over prompts
    high: float
    n: int  # pairs with the measure


@dataclass
class Retention:
    """One other instrument: kept where the base had it, and its judge's paired score change."""

    kept: float  # share of the base-present pairs where the row still has it
    low: float
    high: float
    score: float  # mean change of the judge's probability over those pairs
    score_low: float
    score_high: float
    n: int  # pairs where the base has it
    base_rate: float  # share of all pairs where the base has it


def other_traits(clip: Clip, judge: str = KEEP_JUDGES[0]) -> list[str]:
    """The other instruments a clip was judged for (its `other_<trait>_<judge>_present` fields)."""
    tail = f"_{judge}_present"
    return [k[len("other_") : -len(tail)] for k in clip if k.startswith("other_") and k.endswith(tail)]


def other_fields(judges: dict[str, dict[str, Any]], audio: np.ndarray, sample_rate: int) -> list[dict]:
    """Per clip: `other_<trait>_<judge>_prob` / `_present` for each trait and judge given.

    `judges`: trait -> {"clf": judge, "cnn": judge} (anything with `present(audio, rate)`).
    """
    out: list[dict] = [{} for _ in range(len(audio))]
    for trait, by in judges.items():
        for key, judge in by.items():
            present, prob = judge.present(audio, sample_rate)
            for d, p, s in zip(out, present, prob, strict=True):
                d[f"other_{trait}_{key}_prob"] = float(s)
                d[f"other_{trait}_{key}_present"] = bool(p)
    return out


def _measured(pairs: list[tuple[Clip, Clip]], key: str, groups: list[Any]) -> Measured | None:
    keep = [
        (b[key], s[key], g)
        for (b, s), g in zip(pairs, groups, strict=True)
        if key in b and key in s and _finite(b[key]) and _finite(s[key])
    ]
    if not keep:
        return None
    base = np.array([float(k[0]) for k in keep])
    row = np.array([float(k[1]) for k in keep])
    diff, lo, hi = bootstrap_diff(row - base, [k[2] for k in keep])
    return Measured(float(row.mean()), float(base.mean()), diff, lo, hi, len(keep))


def _retention(pairs: list[tuple[Clip, Clip]], trait: str, judge: str, groups: list[Any]) -> Retention | None:
    p, s = f"other_{trait}_{judge}_present", f"other_{trait}_{judge}_prob"
    both = [(b, r, g) for (b, r), g in zip(pairs, groups, strict=True) if p in b and p in r]
    if not both:
        return None
    had = [(b, r, g) for b, r, g in both if b[p]]
    rate = len(had) / len(both)
    if not had:
        nan = float("nan")
        return Retention(nan, nan, nan, nan, nan, nan, 0, rate)
    g = [x[2] for x in had]
    kept, lo, hi = bootstrap_diff([float(r[p]) for _, r, _ in had], g)
    score, slo, shi = bootstrap_diff([r[s] - b[s] for b, r, _ in had], g)
    return Retention(kept, lo, hi, score, slo, shi, len(had), rate)


def keep_entry(pairs: list[tuple[Clip, Clip]], judges: tuple[str, ...] = KEEP_JUDGES) -> Entry:
    """The keep measures and per-instrument retention of (base, row) clip pairs."""
    groups = [b["prompt"] if b.get("segment") is None else b["segment"] for b, _ in pairs]
    e: Entry = {"n": len(pairs)}
    for key in MEASURES:
        e[key] = _measured(pairs, key, groups)
    others = other_traits(pairs[0][0], judges[0]) if pairs else []
    e["others"] = {
        t: {j: r for j in judges if (r := _retention(pairs, t, j, groups)) is not None} for t in others
    }
    return e


def _finite(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def seed_pairs(base: list[Clip]) -> list[tuple[Clip, Clip]]:
    """No control against itself: each prompt's first sample paired with its second (the floor)."""
    by: dict[Any, dict[int, Clip]] = {}
    for c in base:
        by.setdefault(c.get("prompt"), {})[int(c.get("rep", 0))] = c
    return [(reps[0], reps[1]) for reps in by.values() if 0 in reps and 1 in reps]


def by_prompt(true: list[Clip], clips: list[Clip]) -> list[tuple[Clip, Clip]]:
    """Each clip paired with the true continuation of its prompt (one per prompt)."""
    of = {c.get("prompt"): c for c in true}
    return [(of[c.get("prompt")], c) for c in clips if c.get("prompt") in of]


def keeping(rows: list[Row], clips: list[Clip], references: list[Clip] | None = None) -> list[Entry]:
    """One entry per row other than no control (paired with it), plus the noise floor of every trait
    and task, plus the stem reference (`references`: clips of methods `TRUE` and `STEM`)."""
    by_row: dict[tuple[Any, ...], list[Clip]] = {}
    for c in [*clips, *(references or [])]:
        by_row.setdefault((c["trait"], c["task"], c["method"], _alpha(c["alpha"])), []).append(c)
    out: list[Entry] = []
    seen: set[tuple[str, str]] = set()
    for r in rows:
        base = by_row.get((r["trait"], r["task"], "none", None), [])
        if (r["trait"], r["task"]) not in seen and base:
            seen.add((r["trait"], r["task"]))
            true = by_row.get((r["trait"], r["task"], TRUE, None), [])
            for method, pairs in (
                (FLOOR, seed_pairs(base)),
                (STEM, pair_clips(true, by_row.get((r["trait"], r["task"], STEM, None), []))),
                (MODEL, by_prompt(true, base)),
            ):
                if pairs:
                    e = {**_ident(r, method), "reference": True, **keep_entry(pairs)}
                    if method == STEM:
                        e.update(_presence(pairs, r["task"] != "removal"))
                    out.append(e)
        if r["method"] == "none":
            continue
        pairs = pair_clips(base, by_row.get((r["trait"], r["task"], r["method"], _alpha(r["alpha"])), []))
        if pairs:
            out.append({**_ident(r, r["method"]), "reference": False, **keep_entry(pairs)})
    return out


def _presence(pairs: list[tuple[Clip, Clip]], target: bool) -> Entry:
    """presence_<judge>: the trait's paired presence (`stats.paired`) for a reference's pairs."""
    return {f"presence_{j}": judge_paired(pairs, j, target) for j in JUDGES if f"{j}_prob" in pairs[0][0]}


def _ident(r: Row, method: str) -> Entry:
    same = method == r["method"]
    return {
        "trait": r["trait"],
        "task": r["task"],
        "method": method,
        "alpha": r["alpha"] if same else None,
        "sweep": bool(r.get("sweep")) if same else False,
    }


def add_keep_columns(rows: list[Row], entries: list[Entry], judges: tuple[str, ...] = KEEP_JUDGES) -> None:
    """results.csv columns: per measure the row's mean, paired diff and interval; per other
    instrument and judge its retention, score change and interval."""
    by = {(e["trait"], e["task"], e["method"], _alpha(e["alpha"])): e for e in entries if not e["reference"]}
    for r in rows:
        e = by.get((r["trait"], r["task"], r["method"], _alpha(r["alpha"])))
        if e is None:
            continue
        for key in MEASURES:
            m = e[key]
            if m is not None:
                r[f"{key}_diff"], r[f"{key}_diff_low"], r[f"{key}_diff_high"] = m.diff, m.low, m.high
        for trait, by_judge in e["others"].items():
            for j in judges:
                ret = by_judge.get(j)
                if ret is None:
                    continue
                pre = f"keep_{trait}_{j}"
                r[f"{pre}_base_rate"], r[f"{pre}_pairs"] = ret.base_rate, ret.n
                r[pre], r[f"{pre}_low"], r[f"{pre}_high"] = ret.kept, ret.low, ret.high
                r[f"{pre}_score"], r[f"{pre}_score_low"], r[f"{pre}_score_high"] = (
                    ret.score,
                    ret.score_low,
                    ret.score_high,
                )


def _interval(x: float, lo: float, hi: float, fmt: str) -> str:
    if not _finite(x):
        return "-"
    return f"{format(x, fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def _measure_cell(m: Measured | None, fmt: str = "+.3f") -> str:
    return "-" if m is None else f"{m.value:.2f}: " + _interval(m.diff, m.low, m.high, fmt)


def _others_cell(e: Entry, judge: str) -> str:
    parts = []
    for trait, by_judge in e["others"].items():
        r = by_judge.get(judge)
        if r is None:
            continue
        if r.n == 0:
            parts.append(f"{trait}: not in base")
            continue
        parts.append(
            f"{trait} {100 * r.kept:.0f}% of {r.n}, {_interval(r.score, r.score_low, r.score_high, '+.2f')}"
        )
    return "; ".join(parts) or "-"


def method_label(method: str) -> str:
    return REFERENCE_LABELS.get(method) or LABELS.get(method, method)


def keep_table(cfg: Config, entries: list[Entry], presence: list[Entry], judge: str = KEEP_JUDGES[0]) -> str:
    """Per trait x task x method (and the references): presence beside keeping, each paired [95% CI]."""
    pres = {(e["trait"], e["task"], e["method"], _alpha(e["alpha"])): e for e in presence}
    lines = [
        "| trait | task | method | presence B: diff [CI] (points) | other instruments kept (B): share of the "
        "pairs where no control has it, score change [CI] | harmonic continuity: mean: diff [CI] "
        "| pulse clarity | flatness | tempo kept | pairs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = [FLOOR, STEM, MODEL, *cfg.methods]
    for trait in cfg.traits:
        for task in cfg.tasks:
            for m in order:
                for e in entries:
                    if (e["trait"], e["task"], e["method"]) != (trait, task, m) or e["sweep"]:
                        continue
                    p = pres.get((trait, task, m, _alpha(e["alpha"])))
                    presence_cell = "-"
                    if p is not None and p.get(judge) is not None:
                        q = p[judge]
                        presence_cell = _interval(100 * q.diff, 100 * q.low, 100 * q.high, "+.0f")
                    elif e.get(f"presence_{judge}") is not None:
                        q = e[f"presence_{judge}"]
                        presence_cell = _interval(100 * q.diff, 100 * q.low, 100 * q.high, "+.0f")
                    cells = [
                        trait,
                        task,
                        method_label(m),
                        presence_cell,
                        _others_cell(e, judge),
                        _measure_cell(e["continuity"]),
                        _measure_cell(e["pulse"]),
                        _measure_cell(e["flatness"]),
                        _measure_cell(e["tempo_kept"], "+.2f"),
                        str(e["n"]),
                    ]
                    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def frontier_points(
    entries: list[Entry], presence: list[Entry], task: str = "continuation", judge: str = KEEP_JUDGES[0]
) -> list[dict[str, Any]]:
    """One point per row (sweep included) and reference of a task: presence gain (points) against
    keeping (mean retention of the other instruments, continuity and flatness changes)."""
    pres = {(e["trait"], e["task"], e["method"], _alpha(e["alpha"])): e for e in presence}
    out = []
    for e in entries:
        if e["task"] != task or e["method"] in (FLOOR, MODEL):
            continue
        p = pres.get((e["trait"], e["task"], e["method"], _alpha(e["alpha"])))
        q = p.get(judge) if p is not None else e.get(f"presence_{judge}")
        kept = [r[judge].kept for r in e["others"].values() if judge in r and r[judge].n > 0]
        out.append(
            {
                "trait": e["trait"],
                "method": e["method"],
                "alpha": e["alpha"],
                "presence": 100 * q.diff if q is not None else float("nan"),
                "retention": float(np.mean(kept)) if kept else float("nan"),
                "continuity": e["continuity"].diff if e["continuity"] else float("nan"),
                "flatness": e["flatness"].diff if e["flatness"] else float("nan"),
            }
        )
    return out


def keep_section(
    cfg: Config, keep: list[Entry], presence: list[Entry], judge_info: dict[str, dict[str, Any]]
) -> list[str]:
    """results.md's keeping headline: presence beside what each row keeps of the music, and the
    white-noise level each row's flatness matches (the level the judges' noise check must cover)."""
    levels: dict[tuple[str, str], list[str]] = {}
    for e in keep:
        curve = judge_info.get(e["trait"], {}).get("noise_flatness")
        if e["sweep"] or e["reference"] or not curve or e["flatness"] is None:
            continue
        x = equivalent_level(e["flatness"].diff, curve)
        if x == x:
            text = "> 0.5" if x == float("inf") else format(x, ".2f")
            levels.setdefault((e["trait"], e["task"]), []).append(f"{method_label(e['method'])} {text}")
    return [
        "## Keeping: what each row keeps of the music, paired against no control",
        "",
        keep_table(cfg, keep, presence),
        "",
        "Each steered or text row against the no-control clip of the same prompt and seed, as the "
        "presence headline (judge B's presence diff is repeated in the first column). Other instruments: "
        "each trait judged in this run other than the row's own; among the pairs whose no-control clip "
        "has it (judge B), the share where the row's clip still has it, and the mean change of B's "
        "probability [95% CI over prompts] (judge A's in results.csv). Harmonic continuity: per frame "
        "of the continuation, the correlation of its pitch-class profile with the prompt's, averaged "
        "(smitin.experiment.keep; ~0.4 for a rendered song's own continuation, ~0.1 for another "
        "song's, 0 for noise). Pulse clarity: the onset envelope's best autocorrelation at 0.25-1 s "
        "(0 no pulse, ~0.5-0.7 rendered music). Flatness: spectral flatness (0 tones, 0.56 white "
        "noise). Tempo kept: the continuation's tempo within 8% of the prompt's (or double/half). "
        "Cells read `row mean: paired diff [95% CI]`. References: *no control, another seed* pairs "
        "each prompt's two no-control samples (the noise floor: what chance alone moves); *rendered "
        "stem added* pairs each prompt's true continuation in its song (without the trait's stem) "
        "with the same continuation with the stem added (removal: taken away), both through the codec: "
        "the ceiling, what adding the instrument really does to every measure; *no control vs the "
        "song's own continuation* pairs each unsteered clip with that true continuation (base): what "
        "the model keeps of the song by itself. The model's own "
        "text-conditioned clips are the *text* rows (text-to-music: the caption naming the instrument "
        "vs the same caption without it). Frontier: plots/frontier.png.",
        "",
        *(
            [
                "Flatness as white noise: the level (x RMS) of white noise whose addition raises the noise "
                "check's negatives' flatness as much as each row raises it over no control (the levels "
                "judge_noise_report's judges must hold at): "
                + "; ".join(f"{t} {k}: " + ", ".join(v) for (t, k), v in levels.items())
                + ".",
                "",
            ]
            if levels
            else []
        ),
    ]
