"""The experiment's report: results tables, the judges' agreement, results.md and the CSV files."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from ..recipes import recipe
from .config import LABELS, SWEEP_METHODS, Config
from .headline import HEADROOM, Entry, average_table, headline_notes, headline_table, validity
from .keeping import keep_section
from .metrics import pearson
from .noise import noise_section

Row = dict[str, Any]  # one line of results.csv (also cached as JSON): open-ended, CLAP adds columns
Clip = dict[str, Any]  # one line of clips.csv


class TraitAgreement(TypedDict):
    row_success_r: float
    clip_score_r: float


class Agreement(TypedDict, total=False):
    """How far the probe detector and the classifier agree (`judge_agreement`)."""

    rows: int
    row_success_r: float
    clip_score_r: float
    clip_decision_agreement: float
    clips: int
    per_trait: dict[str, TraitAgreement]
    clip_score_r_clap_clf: float  # only with a CLAP judge


def column_mean(rows: list[Row], key: str) -> float:
    v = [r.get(key, float("nan")) for r in rows]
    v = [x for x in v if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else float("nan")


def _f(x: float | None, fmt: str = ".2f", pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.0f}%" if pct else format(x, fmt)


def add_nll_shift(rows: list[Row]) -> None:
    """NLL of each row minus that of the no-control row of its trait and task."""
    base = {(r["trait"], r["task"]): r["nll"] for r in rows if r["method"] == "none"}
    for r in rows:
        b = base.get((r["trait"], r["task"]))
        r["nll_shift"] = r["nll"] - b if b is not None else float("nan")


def judge_agreement(rows: list[Row], clips: list[Clip]) -> Agreement:
    """How far the two judges agree: across rows (success rates) and across clips (scores, decisions)."""
    out: Agreement = {
        "rows": len(rows),
        "row_success_r": pearson([r["success_probe"] for r in rows], [r["success_clf"] for r in rows]),
        "clip_score_r": pearson([c["probe_score"] for c in clips], [c["clf_prob"] for c in clips]),
        "clip_decision_agreement": float(np.mean([c["probe_present"] == c["clf_present"] for c in clips]))
        if clips
        else float("nan"),
        "clips": len(clips),
    }
    out["per_trait"] = {
        t: {
            "row_success_r": pearson(
                [r["success_probe"] for r in rows if r["trait"] == t],
                [r["success_clf"] for r in rows if r["trait"] == t],
            ),
            "clip_score_r": pearson(
                [c["probe_score"] for c in clips if c["trait"] == t],
                [c["clf_prob"] for c in clips if c["trait"] == t],
            ),
        }
        for t in dict.fromkeys(r["trait"] for r in rows)
    }
    if clips and "clap_prob" in clips[0]:
        out["clip_score_r_clap_clf"] = pearson(
            [c["clap_prob"] for c in clips], [c["clf_prob"] for c in clips]
        )
    return out


def write_csv(path: Path, rows: list[Row]) -> None:
    if not rows:
        path.write_text("")
        return
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def summary_table(cfg: Config, rows: list[Row], task: str) -> str:
    """Method rows for one task at the table's alpha, averaged over traits."""
    sel = [r for r in rows if r["task"] == task and not r["sweep"]]
    clap = any("success_clap" in r for r in sel)
    head = "| method | self-report (probes) | A (classifier) | B (CNN) |" + (" CLAP |" if clap else "")
    head += (
        " mean C | FAD (log-mel) | similarity | boundary sim. | NLL shift | mean gain | steps edited | n |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for m in cfg.methods:
        rs = [r for r in sel if r["method"] == m]
        if not rs:
            continue
        cells = [
            LABELS[m],
            _f(column_mean(rs, "success_probe"), pct=True),
            _f(column_mean(rs, "success_clf"), pct=True),
            _f(column_mean(rs, "success_cnn"), pct=True),
        ]
        if clap:
            cells.append(_f(column_mean(rs, "success_clap"), pct=True))
        cells += [
            _f(column_mean(rs, "probe_score"), ".3f"),
            _f(column_mean(rs, "fad")),
            _f(column_mean(rs, "similarity"), ".3f"),
            _f(column_mean(rs, "boundary_similarity"), ".3f"),
            _f(column_mean(rs, "nll_shift"), "+.3f"),
            _f(column_mean(rs, "mean_gain")),
            _f(column_mean(rs, "share_applied"), pct=True),
            str(sum(r["n"] for r in rs)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def trait_table(cfg: Config, rows: list[Row]) -> str:
    """Success per trait: self-report (probes) / judge A / judge B, one column per task x method."""
    cols = [
        (t, m)
        for t in cfg.tasks
        for m in cfg.methods
        if any(r["task"] == t and r["method"] == m for r in rows)
    ]
    head = "| trait | " + " | ".join(f"{t[:4]}. {m}" for t, m in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for trait in cfg.traits:
        cells = []
        for t, m in cols:
            rs = [
                r
                for r in rows
                if r["trait"] == trait and r["task"] == t and r["method"] == m and not r["sweep"]
            ]
            cells.append(
                " / ".join(
                    _f(column_mean(rs, k), pct=True) for k in ("success_probe", "success_clf", "success_cnn")
                )
                if rs
                else "-"
            )
        lines.append(f"| {trait} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _diff(r: Row, judge: str) -> str:
    """A row's paired difference to no control, in points with its interval."""
    d, lo, hi = (r.get(f"{judge}_{k}", float("nan")) for k in ("diff", "diff_low", "diff_high"))
    if d is None or math.isnan(d):
        return "-"
    return f"{100 * d:+.0f} [{100 * lo:+.0f}, {100 * hi:+.0f}]"


def sweep_table(cfg: Config, rows: list[Row]) -> str:
    """Continuation rows of the swept methods, one line per trait, method and alpha (each line one
    row, so its paired difference and interval are that row's own)."""
    sel = [r for r in rows if r["task"] == "continuation" and r["method"] in SWEEP_METHODS]
    alphas = sorted({r["alpha"] for r in sel})
    lines = [
        "| trait | method | alpha | self-report (probes) | A (classifier) | B (CNN) | A diff [CI] | B diff [CI] | FAD | similarity | NLL shift | steps edited |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for trait in cfg.traits:
        for m in SWEEP_METHODS:
            for a in alphas:
                for r in (r for r in sel if r["trait"] == trait and r["method"] == m and r["alpha"] == a):
                    lines.append(
                        f"| {trait} | {LABELS[m]} | {a:g} | {_f(r.get('success_probe'), pct=True)} "
                        f"| {_f(r.get('success_clf'), pct=True)} | {_f(r.get('success_cnn'), pct=True)} "
                        f"| {_diff(r, 'clf')} | {_diff(r, 'cnn')} | {_f(r.get('fad'))} "
                        f"| {_f(r.get('similarity'), '.3f')} | {_f(r.get('nll_shift'), '+.3f')} "
                        f"| {_f(r.get('share_applied'), pct=True)} |"
                    )
    return "\n".join(lines)


def judges_table(info: dict[str, dict[str, Any]], entries: list[Entry]) -> str:
    """Per trait: probe accuracy and threshold; each judge's calibrated threshold, AUC, accuracy; validity."""
    valid = validity(entries)
    lines = [
        "| trait | probe acc. best / median / top-16 mean | tau paper / positive | self-report detector acc. (AUC) "
        "| A (classifier): AUC / threshold / acc. (cross-fit) / acc. original "
        "| B (CNN): AUC / threshold / acc. (cross-fit) / acc. original "
        "| on generated audio, A / B: text names it - leaves it out | eval clips |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t, v in info.items():
        judged = []
        for pre, thr in (("acc_", "clf_threshold"), ("cnn_", "cnn_threshold")):
            judged.append(
                f"{_f(v.get(pre + 'auc_resynthesised'))} / {_f(v.get(thr), '.3f')} / {_f(v.get(pre + 'resynthesised'))} "
                f"({_f(v.get(pre + 'resynthesised_crossfit'))}) / {_f(v.get(pre + 'original'))}"
            )
        vd = valid.get(t, {})
        gen = " / ".join(
            f"{100 * p.diff:+.0f} pts [{100 * p.low:+.0f}, {100 * p.high:+.0f}]" if p else "-"
            for p in (vd.get("clf"), vd.get("cnn"))
        )
        lines.append(
            f"| {t} | {v['probe_best']:.2f} / {v['probe_median']:.2f} / {v['probe_top16_mean']:.2f} "
            f"| {v['threshold']:.3f} / {_f(v.get('threshold_positive'), '.3f')} "
            f"| {v['acc_probe_detector_resynthesised']:.2f} ({v['acc_probe_detector_auc']:.2f}) "
            f"| {judged[0]} | {judged[1]} | {gen if vd else '- (no text-to-music text row)'} | {v['acc_eval_clips']} |"
        )
    return "\n".join(lines)


def markdown(
    cfg: Config,
    rows: list[Row],
    entries: list[Entry],
    judge_info: dict[str, dict[str, Any]],
    agreement: Agreement,
    notes: list[str],
    info: dict[str, Any],
    plots: list[Path],
    keep: list[Entry] | None = None,
    clean: list[Entry] | None = None,
) -> str:
    """results.md: the command and data, presence and keeping, one table per task, per trait, the
    sweep, judges (with the noise check), metrics. `keep`: `keeping.keeping`'s entries; `clean`:
    the headline by the judges trained without noise."""
    if cfg.threshold is None:
        tau = (
            "each recipe's: smitin's is what the watched heads read on the trait's class mean, the "
            "paper's median(acc) - std(acc)"
        )
    elif cfg.threshold == "paper":
        tau = "the paper's median(acc) - std(acc) (--threshold paper)"
    elif cfg.threshold == "positive":
        tau = "what the watched heads read on the trait's class mean (--threshold positive)"
    else:
        tau = f"{cfg.threshold} (--threshold)"
    parts = [
        header(cfg, info),
        "",
        f"Each row: {cfg.prompts} prompts x {cfg.seeds} samples = {cfg.prompts * cfg.seeds} clips of {cfg.duration:g} s per "
        f"trait (continuation prompts: {cfg.prompt_seconds:g} s), alpha {cfg.alpha:g}, {_schedule(cfg)}, "
        f"CFG {cfg.guidance:g}; ITI steers the top {cfg.iti_heads} heads with weight 1 along the class-mean difference "
        f"at every step, no monitor; SMITIN follows the recipe `{cfg.recipe}` ({recipe(cfg.recipe).summary}), "
        f"SMITIN with the paper's recipe: {recipe('paper').summary}; the monitor threshold is {tau}. Success = the "
        "trait present (continuation, text-to-music) or absent (removal). Values are means over the traits "
        f"{', '.join(cfg.traits)}.",
        "",
        "## Headline: independent judges, paired against no control",
        "",
        *headline_notes(cfg, entries),
        "",
        headline_table(cfg, entries),
        "",
        "Judge A: logistic regression on log-mel statistics; judge B: a small CNN on log-mel frames "
        "(its own 64-band front end). Both are trained on rendered stem mixes of the classifier tracks "
        "(original and through the model's codec), never on model output, and share nothing with the "
        "probes that steer; each decides at a threshold calibrated on the evaluation tracks' real "
        "with/without pairs through the codec (Youden's J; see Judges). rate: share of the row's clips "
        "with the trait (continuation, text-to-music) or without it (removal). diff: paired difference "
        "to the no-control row in points (each clip against the no-control clip of the same prompt and "
        "seed), with a 95% bootstrap interval over prompts (each resampled prompt carries its seeds' "
        "pairs). sign p: exact two-sided sign test on the paired judge scores, ties dropped (toward:away: pairs "
        "whose score moved toward success, up or down for removal, : away from it). base rate: "
        f"the no-control row's rate by A / B; above {100 * HEADROOM:.0f}% the trait has no headroom "
        "under that judge and is left out of the averages below. A judge that does not follow the text "
        "on generated audio for a trait (Judges: text names it - leaves it out, interval not above zero) "
        'is flagged "judge not valid on generated audio" and left out of the averages too.',
        "",
        "### Averaged over traits with headroom and a valid judge",
        "",
        average_table(cfg, entries),
        "",
        "The tables below keep the probes' own reading as **self-report (probes)**: the probes that "
        "steer also judge, so it is never the headline.",
        "",
    ]
    if keep:
        parts += keep_section(cfg, keep, entries, judge_info)
    for task in cfg.tasks:
        if any(r["task"] == task for r in rows):
            parts += [f"## {task}", "", summary_table(cfg, rows, task), ""]
    parts += ["## Success per trait (self-report (probes) / A / B)", "", trait_table(cfg, rows), ""]
    if any(r["sweep"] for r in rows):
        parts += ["## Alpha sweep (continuation)", "", sweep_table(cfg, rows), ""]
    parts += [
        "## Judges",
        "",
        judges_table(judge_info, entries),
        "",
        "Probe accuracy: validation accuracy of the per-head probes (held-out probe tracks). Detector and judges' "
        "accuracy: paired with/without clips of the evaluation tracks, which no judge trained on "
        "(resynthesised = passed through the model's codec, the domain of generated audio). AUC is "
        "threshold-free: a detector can rank clips well (AUC near 1) yet decide badly at its threshold.",
        "",
    ]
    if any(v.get("noise_check") for v in judge_info.values()):
        parts += noise_section(cfg, judge_info, clean or [])
    parts += [
        f"Agreement of self-report (probes) and judge A: success rates across {agreement['rows']} rows r = {_f(agreement['row_success_r'])}; "
        f"per clip ({agreement['clips']}): score correlation r = {_f(agreement['clip_score_r'])}, same decision on "
        f"{_f(agreement['clip_decision_agreement'], pct=True)} of clips. Per trait (rows r / clip-score r): "
        + ", ".join(
            f"{t} {_f(v['row_success_r'])} / {_f(v['clip_score_r'])}"
            for t, v in agreement["per_trait"].items()
        )
        + " (- where one judge gave the same verdict on every row).",
        "",
        "## Metrics",
        "",
        "- self-report (probes): the model's own probes on the re-encoded clip: mean over positions after 1 s of "
        "C(t) = median probability of the 16 best heads, present when >= tau = median(acc) - std(acc).",
        "- mean C: that probe score averaged over the row's clips (moves even when it never crosses tau).",
        "- A (classifier): logistic regression on log-mel statistics (smitin.experiment.features.clip_features, 16 kHz), "
        "trained on original and codec-resynthesised rendered mixes of the classifier tracks; present when p >= its "
        "calibrated threshold (Youden's J on the evaluation tracks' with/without pairs through the codec).",
        "- B (CNN): three conv blocks (8/16/32 channels, ~6k parameters) on 64-band log-mel frames at 16 kHz "
        "(smitin.experiment.cnn), trained on the same clips as A, threshold calibrated the same way. Judges' "
        "acc. is at the calibrated threshold; (cross-fit): threshold fitted on the other half of the evaluation "
        "tracks; on generated audio: text-to-music, the rate with the instrument named in the prompt minus without "
        "(paired), the judge's validity where generated audio lives.",
        "- FAD (log-mel): Frechet distance between 0.5 s window embeddings (mean and std of 20 pooled log-mel bands, "
        "40-d, RMS-normalised clips) of a row's clips and of codec-resynthesised full mixes of the evaluation tracks. "
        "FAD on small sets is biased upwards; every row has the same number of clips, so compare rows, not absolute values.",
        "- similarity: cosine of mean window embeddings (z-scored by the reference set) of prompt and continuation; "
        "boundary: the prompt's last second against the continuation's first.",
        "- NLL shift: mean token negative log-likelihood (nats) of the row's new codes under the unsteered model "
        "(null text, teacher-forced, prompt as context) minus that of the no-control row.",
        "- mean gain / steps edited: `Result.trace.mean_gain()` / `share_applied()` (with a schedule of every 5th "
        "step, always-on steering edits 20% of steps; every step: 100%).",
        "",
    ]
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(parts)


def header(cfg: Config, info: dict[str, Any]) -> str:
    """results.md's title and the line with the command, the model and the data split."""
    cmd = (
        info.get("command")
        or "smitin experiment " + ("--quick " if cfg.quick else "") + f"--out {cfg.out} --seed {cfg.seed}"
    )
    return "\n".join(
        [
            f"# smitin experiment: {info['model']} ({info['layout']}, weights {info['model_digest']})",
            "",
            f"Command: `{cmd}` (smitin {info['smitin']}, {info['minutes']} min). Base seed {cfg.seed}; data "
            f"`{info['data']}` split by track into {info['split']['probe']} probe / {info['split']['judge']} "
            f"classifier / {info['split']['eval']} evaluation songs.",
        ]
    )


def _schedule(cfg: Config) -> str:
    """How often the steered rows edit: one interval for all (--every), or each row's recipe's."""
    if cfg.every:
        return f"edits every {cfg.every} steps in every steered row"
    return "each steered row edits on its recipe's schedule"
