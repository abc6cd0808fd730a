"""The headline: each row against its no-control row, pair by pair, by the two independent judges.

Judge A is the classifier (logistic regression on log-mel statistics, `judges.ClassifierJudge`),
judge B the CNN on log-mel frames (`cnn.CNNJudge`); neither shares anything with the probes that
steer. A clip of a row and the clip of the same trait and task's no-control row with the same
prompt and seed (`rows.clip_plan`) form a pair. Per row and judge: the presence rate (share of
clips with the trait; without it, for removal), its paired difference to no control with a 95%
bootstrap interval over prompts, and a sign test on the paired judge scores (`stats.paired`).

A trait and task whose no-control rate leaves no headroom (> `HEADROOM` of clips already
succeed) is flagged and left out of the averages. So is a judge that does not follow the text on
generated audio for a trait (text-to-music, naming the instrument vs leaving it out: the paired
difference's interval does not lie above zero): generated audio is not what the judges were trained
on, and a judge that cannot tell there cannot judge steering there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .config import LABELS, Config
from .stats import Paired, paired

HEADROOM = 0.7  # a base success rate above this leaves too little room to show an effect
MIN_PAIRS = 48  # pairs per row for a headline the issue calls measured
JUDGES = {"clf": "A (classifier)", "cnn": "B (CNN)"}  # clip columns <key>_prob, <key>_present
CLEAN_JUDGES = {
    "clf_clean": "A without noise",
    "cnn_clean": "B without noise",
}  # the judges before noise training

Row = dict[str, Any]
Clip = dict[str, Any]
Entry = dict[str, Any]  # trait, task, method, alpha, sweep, n, and per judge key a `Paired`


def _alpha(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def pair_clips(base: list[Clip], steered: list[Clip]) -> list[tuple[Clip, Clip]]:
    """Clips matched by (prompt, seed, rep): the no-control clip and the steered clip of each pair.

    Clips without a partner (a row cut short) are left out.
    """

    def key(c: Clip) -> tuple[Any, ...]:
        return (c.get("prompt"), c.get("seed"), c.get("rep"))

    by = {key(c): c for c in base}
    if len(by) != len(base):
        raise ValueError("no-control clips do not have distinct (prompt, seed, rep)")
    return [(by[key(c)], c) for c in steered if key(c) in by]


def headroom(base_rate: float) -> bool:
    """Room for the row to beat no control: its base success rate is at most `HEADROOM`."""
    return not (base_rate > HEADROOM)


def judge_paired(pairs: list[tuple[Clip, Clip]], judge: str, target: bool) -> Paired:
    """One judge's paired statistics (`stats.paired`) of (base, steered) clip pairs: success is the
    judge finding the trait as `target` wants; grouped by prompt (or segment) for the intervals."""
    groups = [b["prompt"] if b.get("segment") is None else b["segment"] for b, _ in pairs]
    return paired(
        [b[f"{judge}_present"] == target for b, _ in pairs],
        [s[f"{judge}_present"] == target for _, s in pairs],
        [b[f"{judge}_prob"] for b, _ in pairs],
        [s[f"{judge}_prob"] for _, s in pairs],
        groups,
        higher=target,
    )


def headline(rows: list[Row], clips: list[Clip], judges: dict[str, str] = JUDGES) -> list[Entry]:
    """One entry per row other than no control: per judge key, the `Paired` statistics."""
    by_row: dict[tuple[Any, ...], list[Clip]] = {}
    for c in clips:
        by_row.setdefault((c["trait"], c["task"], c["method"], _alpha(c["alpha"])), []).append(c)
    out: list[Entry] = []
    for r in rows:
        if r["method"] == "none":
            continue
        base = by_row.get((r["trait"], r["task"], "none", None), [])
        pairs = pair_clips(base, by_row.get((r["trait"], r["task"], r["method"], _alpha(r["alpha"])), []))
        if not pairs:
            continue
        target = r["task"] != "removal"
        e: Entry = {k: r[k] for k in ("trait", "task", "method", "alpha", "sweep")}
        e["n"] = len(pairs)
        for j in judges:
            if f"{j}_prob" not in pairs[0][0]:
                continue
            e[j] = judge_paired(pairs, j, target)
            e[f"{j}_headroom"] = headroom(e[j].base)
        out.append(e)
    valid = validity(out, judges)
    for e in out:
        for j in judges:
            if j in e:
                v = valid.get(e["trait"], {}).get(j)
                e[f"{j}_valid"] = None if v is None else bool(v.low > 0)  # None: no text row to tell
    return out


def counts(e: Entry, j: str) -> bool:
    """Whether judge j's reading of an entry goes into the averages: headroom, and not shown invalid."""
    return j in e and bool(e[f"{j}_headroom"]) and e.get(f"{j}_valid") is not False


def add_paired_columns(rows: list[Row], entries: list[Entry], judges: dict[str, str] = JUDGES) -> None:
    """results.csv columns of the headline: per judge base rate, paired diff, interval, sign p, headroom."""
    by = {(e["trait"], e["task"], e["method"], _alpha(e["alpha"])): e for e in entries}
    for r in rows:
        e = by.get((r["trait"], r["task"], r["method"], _alpha(r["alpha"])))
        r["pairs"] = e["n"] if e else 0
        for j in judges:
            p = e.get(j) if e else None
            r[f"{j}_base"] = p.base if p else float("nan")
            r[f"{j}_diff"] = p.diff if p else float("nan")
            r[f"{j}_diff_low"] = p.low if p else float("nan")
            r[f"{j}_diff_high"] = p.high if p else float("nan")
            r[f"{j}_sign_p"] = p.p if p else float("nan")
            r[f"{j}_toward"], r[f"{j}_away"] = (p.toward, p.away) if p else (0, 0)
            r[f"{j}_headroom"] = e[f"{j}_headroom"] if e and p else None
            r[f"{j}_valid"] = e.get(f"{j}_valid") if e and p else None


def _pct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.0f}%"


def _pts(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:+.0f}"


def _cell(p: Paired | None) -> list[str]:
    if p is None:
        return ["-", "-", "-"]
    return [
        _pct(p.rate),
        f"{_pts(p.diff)} [{_pts(p.low)}, {_pts(p.high)}]",
        f"{p.p:.2g} ({p.toward}:{p.away})",
    ]


def _flag(e: Entry, judges: dict[str, str]) -> str:
    present = [j for j in judges if j in e]
    flags = []
    for what, bad in (
        ("no headroom", [j for j in present if not e[f"{j}_headroom"]]),
        ("judge not valid on generated audio", [j for j in present if e.get(f"{j}_valid") is False]),
    ):
        if bad:
            names = ", ".join(judges[j].split()[0] for j in bad)
            flags.append(what if len(bad) == len(present) else f"{what} ({names})")
    return "; ".join(flags) or "ok"


def headline_table(cfg: Config, entries: list[Entry], judges: dict[str, str] = JUDGES) -> str:
    """Per trait x task x method at the table's alpha: both judges' rate, paired diff [CI], sign p."""
    head = "| trait | task | method |"
    for name in judges.values():
        head += f" {name}: rate | diff [95% CI] (points) | sign p (toward:away) |"
    head += " base rate A / B | pairs | headroom |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for trait in cfg.traits:
        for task in cfg.tasks:
            for m in cfg.methods:
                for e in entries:
                    if (e["trait"], e["task"], e["method"]) != (trait, task, m) or e["sweep"]:
                        continue
                    cells = [trait, task, LABELS[m]]
                    for j in judges:
                        cells += _cell(e.get(j))
                    base = " / ".join(_pct(e[j].base) if j in e else "-" for j in judges)
                    cells += [base, str(e["n"]), _flag(e, judges)]
                    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def average_table(cfg: Config, entries: list[Entry], judges: dict[str, str] = JUDGES) -> str:
    """Per task x method: mean rate and mean paired difference over the traits with headroom whose
    judge is not shown invalid on generated audio (`counts`)."""
    head = "| task | method |" + "".join(
        f" {name}: rate | diff (points) | traits |" for name in judges.values()
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for task in cfg.tasks:
        for m in cfg.methods:
            es = [e for e in entries if e["task"] == task and e["method"] == m and not e["sweep"]]
            if not es:
                continue
            cells = [task, LABELS[m]]
            for j in judges:
                keep = [e[j] for e in es if counts(e, j)]
                if keep:
                    cells += [
                        _pct(float(np.mean([p.rate for p in keep]))),
                        _pts(float(np.mean([p.diff for p in keep]))),
                        str(len(keep)),
                    ]
                else:
                    cells += ["-", "-", "0"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def validity(entries: list[Entry], judges: dict[str, str] = JUDGES) -> dict[str, dict[str, Paired]]:
    """Per trait and judge: text-to-music, prompt naming the instrument vs leaving it out (paired)."""
    out: dict[str, dict[str, Paired]] = {}
    for e in entries:
        if e["task"] == "text-to-music" and e["method"] == "text":
            out[e["trait"]] = {j: e[j] for j in judges if j in e}
    return out


def headline_notes(cfg: Config, entries: list[Entry]) -> list[str]:
    """What the reader must know to read the headline: too few pairs."""
    small = sorted({e["n"] for e in entries if not e["sweep"] and e["n"] < MIN_PAIRS})
    if not small:
        return []
    return [
        f"**Rows below {MIN_PAIRS} pairs** ({', '.join(map(str, small))} pairs"
        + (", a --quick run" if cfg.quick else "")
        + "): intervals and tests are too wide to read as evidence; run without --quick "
        f"(default {MIN_PAIRS} pairs per row) for the headline."
    ]
