"""The automation part (`--tasks automation`): does a trait follow a lane, judged second by second?

For each trait, continuation from the same prompts (without the instrument) and seeds as the
continuation table, with two lanes over the new audio: "absent then present" (remove for the
first half, add for the second) and "present then absent". Rows: no control, constant SMITIN
(adds all along, today's behaviour), SMITIN following the lane, and ITI following the lane (no
monitor). No control and constant SMITIN are one generation each, judged against both lanes.

Every clip is cut into 1-s windows, each judged by the probe detector (C(t) of the model's own
probes, averaged over the window with the prompt as context, present at tau) and by judge B (the
CNN on log-mel frames, its threshold recalibrated on 1-s windows of the evaluation tracks' real
with/without pairs through the codec). A row's score per half: the share of that half's windows in
the wanted state, with a 95% bootstrap interval over prompts. FAD and similarity as in the table.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from ..lanes import Lane
from .config import Config
from .features import window_embeddings
from .metrics import auc, continuation_similarity, fad
from .rows import Job, generate_row
from .split import pick_prompts
from .stats import accuracy_at, bootstrap_diff, youden_threshold

if TYPE_CHECKING:
    from .runner import Experiment

TASK = "automation"
METHODS = ("none", "smitin", "lane-smitin", "lane-iti")
LABELS = {
    "none": "no control",
    "smitin": "SMITIN, constant (adds all along)",
    "lane-smitin": "SMITIN following the lane",
    "lane-iti": "ITI following the lane (no monitor)",
}
SHAPES = {"absent-present": ("remove", "add"), "present-absent": ("add", "remove")}
WINDOW = 1.0  # seconds per judged window
JUDGES = {"probe": "probe detector", "cnn": "B (CNN)"}
VERSION = 1  # bump when what a cached automation row holds changes


def lane_for(shape: str, duration: float) -> Lane:
    """The lane of a shape: the first wish over the first half of the new audio, the second after."""
    first, second = SHAPES[shape]
    half = duration / 2
    return Lane.of([(0.0, half, first), (half, duration, second)])


def plan(cfg: Config, trait: str, prompts: Any) -> list[Job]:
    """The automation rows of one trait (continuation prompts without the trait); [] without prompts."""
    idx = pick_prompts(prompts, 0, cfg.prompts)
    if not idx:
        return []
    waves = prompts.load(idx)
    jobs = []
    for method in METHODS:
        shapes: list[str | None] = list(SHAPES) if method.startswith("lane-") else [None]
        for shape in shapes:
            jobs.append(
                Job(
                    trait=trait,
                    task=TASK,
                    method=method,
                    alpha=cfg.alpha if method != "none" else float("nan"),
                    sweep=False,
                    texts=None,
                    waves=waves,
                    count=len(idx),
                    segments=list(idx),
                    lane=str(lane_for(shape, cfg.duration)) if shape else None,
                    shape=shape,
                )
            )
    return jobs


def calibrate(exp: Experiment, trait: str) -> dict[str, Any]:
    """Window thresholds and accuracies of both judges on 1-s windows of real with/without pairs (cached).

    The evaluation tracks' clips, through the codec, cut into windows that inherit their clip's
    label. Judge B's threshold is refitted there (Youden's J); the probe detector keeps tau.
    """
    cfg, td = exp.cfg, exp.data[trait]
    cnn = exp.cnns[trait]
    key = {"cnn": cnn.info.get("key"), "eval": td.judge_eval.fingerprint(), "window": WINDOW, "v": VERSION}
    path = cfg.out / "judges" / f"{trait}-windows.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("key") == json.loads(json.dumps(key, default=str)):
            return cached["info"]
    audio = exp.resynth(td.judge_eval.load(range(len(td.judge_eval))))
    labels = td.judge_eval.labels().astype(bool)
    w = int(round(cfg.duration / WINDOW))
    cut = _windows(audio, exp.sr, w)  # [N, W, S]
    y = np.repeat(labels, w)
    cnn_p = cnn.proba(cut.reshape(-1, cut.shape[-1]), exp.sr)
    det = exp.detectors[trait]
    probe_s = det.window_scores(audio, exp.sr, cfg.duration, WINDOW).reshape(-1)
    thr = youden_threshold(y, cnn_p)
    info = {
        "windows": int(len(y)),
        "cnn_threshold": thr,
        "cnn_acc": accuracy_at(y, cnn_p, thr),
        "cnn_auc": auc(y, cnn_p),
        "probe_threshold": det.threshold,
        "probe_acc": accuracy_at(y, probe_s, det.threshold),
        "probe_auc": auc(y, probe_s),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "info": info}, indent=1, default=str))
    return info


def _windows(audio: np.ndarray, sr: int, w: int) -> np.ndarray:
    """[N, S] -> [N, W, sr * WINDOW]: the first W whole windows of each clip."""
    n = int(round(WINDOW * sr))
    if audio.shape[1] < w * n:
        raise ValueError(f"clips of {audio.shape[1] / sr:.2f} s hold fewer than {w} windows of {WINDOW:g} s")
    return audio[:, : w * n].reshape(len(audio), w, n)


def run_row(exp: Experiment, job: Job, calib: dict[str, Any]) -> dict[str, Any]:
    """Generate one automation row and judge it per window (cached as JSON by its settings)."""
    cfg, trait = exp.cfg, job.trait
    key = {
        **job.ident(),
        **cfg.key(),
        "threshold": cfg.threshold,
        "weights": exp.digest,
        "recipe": asdict(job.recipe(cfg)) if job.steered else None,
        "v": VERSION,
    }
    h = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = cfg.out / "rows" / f"{trait}-{TASK}-{job.method}-{job.shape or 'all'}-{h}.json"
    if path.exists():
        return json.loads(path.read_text())["row"]
    batch = generate_row(exp.backbone, job, exp.steers(job), cfg)
    w = int(round(cfg.duration / WINDOW))
    cnn_p = exp.cnns[trait].proba(
        _windows(batch.audio, exp.sr, w).reshape(-1, int(round(WINDOW * exp.sr))), exp.sr
    )
    assert batch.prompt is not None  # automation continues prompts
    whole = np.concatenate([batch.prompt, batch.audio], axis=1)
    probe_s = exp.detectors[trait].window_scores(whole, exp.sr, w * WINDOW, WINDOW)
    sim, edge = continuation_similarity(batch.prompt, batch.audio, exp.sr, exp.standardise)
    row = {
        **job.ident(),
        "shape": job.shape,
        "n": len(batch.audio),
        "windows": w,
        "prompt": batch.prompt_index.tolist(),
        "probe_present": (probe_s >= calib["probe_threshold"]).tolist(),
        "cnn_present": (cnn_p.reshape(-1, w) >= calib["cnn_threshold"]).tolist(),
        "probe_score": probe_s.tolist(),
        "cnn_prob": cnn_p.reshape(-1, w).tolist(),
        "fad": fad(window_embeddings(batch.audio, exp.sr), exp.ref_emb),
        "similarity": float(sim.mean()),
        "boundary_similarity": float(edge.mean()),
        "mean_gain": batch.mean_gain,
        "share_applied": batch.share_applied,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "row": row}, default=str))
    return row


def followed(row: dict[str, Any], shape: str, judge: str) -> dict[str, tuple[float, float, float]]:
    """Per half ("first", "second", "both"): share of windows in the wanted state (mean, 95% CI low, high).

    Clips are resampled by prompt (a prompt brings all its seeds' clips).
    """
    present = np.asarray(row[f"{judge}_present"], bool)  # [N, W]
    w = present.shape[1]
    half = w // 2
    wish = np.array([SHAPES[shape][0] == "add"] * half + [SHAPES[shape][1] == "add"] * (w - half))
    right = (present == wish[None]).astype(float)
    parts = {"first": right[:, :half], "second": right[:, half:], "both": right}
    return {k: bootstrap_diff(v.mean(1), row["prompt"]) for k, v in parts.items()}


def entries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per trait x lane shape x method: the rows' per-half scores by both judges."""
    out = []
    for trait in dict.fromkeys(r["trait"] for r in rows):
        for shape in SHAPES:
            for method in METHODS:
                r = next(
                    (
                        x
                        for x in rows
                        if x["trait"] == trait and x["method"] == method and x.get("shape") in (None, shape)
                    ),
                    None,
                )
                if r is None:
                    continue
                e = {"trait": trait, "shape": shape, "method": method, "row": r}
                e.update({j: followed(r, shape, j) for j in JUDGES})
                out.append(e)
    return out


def automation_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """automation.csv: one line per trait x lane x method, per judge and half the share and its interval."""
    out = []
    for e in entries(rows):
        r = e["row"]
        line: dict[str, Any] = {"trait": e["trait"], "lane": e["shape"], "method": e["method"], "n": r["n"]}
        for j in JUDGES:
            for part, (m, lo, hi) in e[j].items():
                line.update({f"{j}_{part}": m, f"{j}_{part}_low": lo, f"{j}_{part}_high": hi})
        line.update(
            {k: r[k] for k in ("fad", "similarity", "boundary_similarity", "mean_gain", "share_applied")}
        )
        out.append(line)
    return out


def _ci(v: tuple[float, float, float]) -> str:
    m, lo, hi = v
    if math.isnan(m):
        return "-"
    return f"{100 * m:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]"


def markdown(cfg: Config, rows: list[dict[str, Any]], calib: dict[str, dict[str, Any]]) -> str:
    """The automation section of results.md: per trait and lane, the share of windows in the wanted state."""
    es = entries(rows)
    n = rows[0]["n"] if rows else 0
    parts = [
        "## Automation: does the trait follow a lane?",
        "",
        f"Continuation of {cfg.prompts} prompts without the trait x {cfg.seeds} seeds = {n} clips of "
        f"{cfg.duration:g} s per row (the continuation table's prompts and seeds), alpha {cfg.alpha:g}. Lanes over "
        "the new audio: **absent then present** (remove for the first half, add for the second) and **present "
        "then absent**. Each clip is judged per 1-s window; a cell is the share of the half's windows in the "
        "wanted state, with a 95% bootstrap interval over prompts. No control and constant SMITIN are one "
        "generation each, scored against each lane.",
        "",
    ]
    for trait in dict.fromkeys(e["trait"] for e in es):
        c = calib.get(trait, {})
        parts += [
            f"### {trait}",
            "",
            f"Window judges on {c.get('windows', '-')} real 1-s windows through the codec: probe detector "
            f"acc. {_pct(c.get('probe_acc'))} (AUC {_num(c.get('probe_auc'))}, tau {_num(c.get('probe_threshold'), '.3f')}), "
            f"B (CNN) acc. {_pct(c.get('cnn_acc'))} (AUC {_num(c.get('cnn_auc'))}, window threshold "
            f"{_num(c.get('cnn_threshold'), '.3f')}).",
            "",
        ]
        for shape, (first, second) in SHAPES.items():
            parts += [
                f"**{shape.replace('-', ' then ')}** (first half: {first}, second half: {second})",
                "",
                "| method | probe: 1st half | probe: 2nd half | B: 1st half | B: 2nd half | B: both | FAD | similarity | steps edited |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for e in es:
                if e["trait"] != trait or e["shape"] != shape:
                    continue
                r = e["row"]
                parts.append(
                    f"| {LABELS[e['method']]} | {_ci(e['probe']['first'])} | {_ci(e['probe']['second'])} "
                    f"| {_ci(e['cnn']['first'])} | {_ci(e['cnn']['second'])} | {_ci(e['cnn']['both'])} "
                    f"| {_num(r['fad'])} | {_num(r['similarity'], '.3f')} | {_pct(r.get('share_applied'))} |"
                )
            parts.append("")
    return "\n".join(parts)


def _num(x: Any, fmt: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _pct(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def run_automation(exp: Experiment) -> tuple[list[dict[str, Any]], str]:
    """All automation rows of the configured traits (cached), and their results.md section."""
    cfg = exp.cfg
    rows, calib = [], {}
    for trait in cfg.traits:
        jobs = plan(cfg, trait, exp.data[trait].prompts)
        if not jobs:
            exp.notes.append(f"{trait}/{TASK}: no prompt segments without {trait}; skipped")
            continue
        calib[trait] = calibrate(exp, trait)
        for job in jobs:
            if cfg.progress:
                print(f"automation: {job.describe()} {job.shape or ''}", flush=True)
            rows.append(run_row(exp, job, calib[trait]))
    return rows, markdown(cfg, rows, calib)
