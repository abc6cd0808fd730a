"""`smitin experiment`: the paper's experiment table, in one command.

For each trait and task the rows (see `rows`) are generated, then every clip is judged by the
model's own probes (self-report) and by two independent judges that never saw model output (a
classifier on log-mel statistics, a CNN on log-mel frames; thresholds calibrated on real pairs
through the codec), paired against the no-control clip of the same prompt and seed (`headline`),
and scored for quality (FAD to rendered music) and coherence (prompt/continuation similarity, the
unsteered model's likelihood).
Results are cached row by row in the output folder, so an interrupted run resumes.
The judges' training, calibration and noise check are `judging`'s.
About 500 lines: the `Experiment` holds each trait's probes, judges, references and row cache, and
the run loop reads them all; the reference rows (`references`) are the next to move out.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from tqdm.auto import tqdm

from ..backbone import Backbone
from ..distributed import World, barrier, joined
from ..files import atomic
from ..probes import ProbeSet
from ..steering import Steer
from ..version import __version__
from .automation import TASK as AUTOMATION
from .automation import automation_table, run_automation
from .cnn import CNNJudge
from .config import Config
from .features import window_embeddings
from .headline import CLEAN_JUDGES, Entry, add_paired_columns, headline
from .judges import ClassifierJudge, ProbeDetector, optional_judges
from .judging import JUDGE_NOISE, JUDGE_VERSION, trained_judges
from .keep import clip_measures
from .keeping import STEM, TRUE, add_keep_columns, frontier_points, keeping, other_fields
from .metrics import Standardiser, continuation_similarity, fad, frechet_distance, token_nll
from .report import Agreement, Clip, Row, add_nll_shift, header, judge_agreement, markdown, write_csv
from .rows import Batch, Job, generate_row, generate_rows, plan_jobs
from .split import prepare_data

ROW_VERSION = 5  # bump when what a cached row holds changes (cached rows are regenerated)
Judge = ClassifierJudge | CNNJudge
KEEP_MEANS = ("continuity", "pulse", "flatness", "tempo_kept", "prompt_pulse")  # row means in results.csv
NOISE_JUDGES = ("A", "B", "A (no noise)", "B (no noise)")  # judge_info["noise_check"]'s names


class Results(TypedDict):
    """What `run_experiment` returns (the files it writes hold the same)."""

    rows: list[Row]
    clips: list[Clip]
    judges: dict[str, dict[str, Any]]
    agreement: Agreement
    headline: list[Entry]
    keeping: list[Entry]  # what each row keeps of the music (`keeping`), with the references
    markdown: str
    automation: list[dict[str, Any]]  # the automation part's rows (`--tasks automation`), [] without it


class Experiment:
    """State shared by all rows: model, data, judges, reference embeddings."""

    def __init__(self, cfg: Config, backbone: Backbone | None = None) -> None:
        from ..backbone import load

        self.cfg = cfg
        cfg.out.mkdir(parents=True, exist_ok=True)
        self.backbone = backbone or load(cfg.model, device=cfg.device)
        self.sr = self.backbone.sample_rate
        prepared = prepare_data(cfg, self.sr)
        self.root, self.data, self.split = prepared.root, prepared.traits, prepared.split
        self.reference_sets = prepared.reference
        self.clap, self.notes = optional_judges(cfg.clap)
        self.digest = self.backbone.weights_digest()
        self.probes: dict[str, ProbeSet] = {}
        self.detectors: dict[str, ProbeDetector] = {}
        self.classifiers: dict[str, ClassifierJudge] = {}
        self.cnns: dict[str, CNNJudge] = {}
        self.clean: dict[str, tuple[ClassifierJudge, CNNJudge]] = {}  # the same judges without noise
        self.judge_info: dict[str, dict[str, Any]] = {}
        self._guard_cache()
        self._reference()

    def _guard_cache(self) -> None:
        """Cached rows hold for one model and one data split: clear them if either changed."""
        key = {
            "weights": self.digest,
            "data": str(self.root.resolve()),
            "split": {k: sorted(v) for k, v in self.split.items()},
        }
        path = self.cfg.out / "rows" / "data_key.json"
        if path.exists() and json.loads(path.read_text()) != key:
            print(
                f"{path.parent}: cached rows were made with another model or data; recomputing",
                file=sys.stderr,
            )
            for f in path.parent.glob("*.json"):
                f.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(key, indent=1))

    def resynth(self, audio: np.ndarray, batch: int = 8) -> np.ndarray:
        """Clips through the model's codec (encode + decode): the domain generated audio lives in."""
        return self.backbone.round_trip(audio, batch)

    def _reference(self) -> None:
        """Reference music for FAD: full mixes from evaluation tracks, resynthesised by the codec."""
        clips, seen = [], set()
        size = max(16, 2 * self.cfg.prompts * self.cfg.seeds)
        for segs in self.reference_sets.values() or [td.judge_eval for td in self.data.values()]:
            for i, s in enumerate(segs.segments):
                if s.label == 1 and (s.track, s.start) not in seen:
                    seen.add((s.track, s.start))
                    clips.append((s.track, s.start, i, segs))
        clips.sort(key=lambda c: hashlib.sha256(f"{c[0]}{c[1]}".encode()).hexdigest())
        clips = clips[:size]
        if len(clips) < 2:
            raise ValueError("the evaluation tracks hold fewer than 2 reference clips; add songs (--songs)")
        audio = np.stack([segs.load_one(segs.segments[i]) for _, _, i, segs in clips])
        self.reference_audio = self.resynth(audio)
        self.ref_emb = window_embeddings(self.reference_audio, self.sr)
        self.standardise = Standardiser.fit(self.ref_emb)
        self.ref_clap = self.clap.embed(self.reference_audio, self.sr) if self.clap else None

    # -- per trait -------------------------------------------------------------------------
    def prepare_trait(self, trait: str, probes: ProbeSet | None = None) -> None:
        """Probes (`probes`, or fitted on the probe tracks and cached) and the two independent judges
        (cached), with their accuracy on the evaluation tracks."""
        from ..probes import fit_cached

        cfg, td = self.cfg, self.data[trait]
        path = cfg.out / "probes" / f"{trait}.safetensors"
        if probes is None:
            probes = fit_cached(self.backbone, td.probe, path, progress=cfg.progress)
        self.probes[trait] = probes
        self.detectors[trait] = ProbeDetector(self.backbone, probes)

        self.classifiers[trait], self.cnns[trait] = self._judges(trait)
        judge, cnn = self.classifiers[trait], self.cnns[trait]
        acc = probes.accuracy
        self.judge_info[trait] = {
            "probe_best": float(acc.max()),
            "probe_median": float(acc.median()),
            "probe_top16_mean": float(acc.flatten()[probes.top(16)].mean()),
            "threshold": probes.threshold(),
            "threshold_positive": probes.class_reading(probes.top(16)),
            "probe_tracks": len({s.track for s in td.probe.segments}),
            "judge_tracks": len({s.track for s in td.judge.segments}),
            "eval_tracks": len({s.track for s in td.judge_eval.segments}),
            "classifier_train_clips": judge.info.get("train_clips"),
            **{f"acc_{k}": v for k, v in judge.accuracy.items()},
            "clf_threshold": judge.threshold,
            "cnn_threshold": cnn.threshold,
            "cnn_params": cnn.info.get("params"),
            **{f"cnn_{k}": v for k, v in cnn.accuracy.items()},
            "noise_check": {
                name: {**j.accuracy, "fp": j.info.get("noise_check", {})}
                for name, j in zip(NOISE_JUDGES, self._four(trait), strict=True)
            },
            "noise_flatness": judge.info.get("noise_flatness", {}),
        }

    def _four(self, trait: str) -> tuple[Judge, ...]:
        """A, B, and A, B trained without noise: the order of `NOISE_JUDGES`."""
        return (self.classifiers[trait], self.cnns[trait], *self.clean[trait])

    def _judges(self, trait: str) -> tuple[ClassifierJudge, CNNJudge]:
        """The two independent judges of a trait (`judging.trained_judges`, cached in OUT/judges);
        their twins trained without noise go to `self.clean` for the noise check's comparison."""
        clf, cnn, clf0, cnn0 = trained_judges(
            trait,
            self.data[trait],
            self.cfg.out / "judges",
            model_digest=self.digest,
            resynth=self.resynth,
            sr=self.sr,
            seed=self.cfg.seed,
            detector=self.detectors[trait],
            clap=self.clap,
        )
        self.clean[trait] = (clf0, cnn0)
        return clf, cnn

    def keep_fields(self, trait: str, audio: np.ndarray, prompt: np.ndarray | None) -> list[dict[str, Any]]:
        """Per clip, beside the trait's presence: the judges trained without noise on the trait
        (`<judge>_clean_prob/present`), the keep measures (`keep.clip_measures`) and every other
        judged trait's presence (`keeping.other_fields`)."""
        out = [{**m} for m in clip_measures(audio, self.sr, prompt)]
        clean: tuple[Judge, ...] = self.clean[trait]
        for name, judge in zip(CLEAN_JUDGES, clean, strict=True):
            present, prob = judge.present(audio, self.sr)
            for d, p, q in zip(out, present, prob, strict=True):
                d[f"{name}_prob"], d[f"{name}_present"] = float(q), bool(p)
        others = {t: {"cnn": self.cnns[t], "clf": self.classifiers[t]} for t in self.cnns if t != trait}
        for d, o in zip(out, other_fields(others, audio, self.sr), strict=True):
            d.update(o)
        return out

    def references(self, trait: str) -> list[Clip]:
        """The stem reference's clips (`keeping.TRUE` / `keeping.STEM`) of continuation and removal.

        For each continuation prompt (the rows' own, a mix without the trait), the song's true
        continuation after it without the trait's stem (TRUE) and with it (STEM), both through the
        codec; for removal the same with the roles swapped (the prompts have the trait).
        """
        from dataclasses import replace as _replace

        from .split import pick_prompts

        cfg, td = self.cfg, self.data[trait]
        out: list[Clip] = []
        for task, label in (("continuation", 0), ("removal", 1)):
            if task not in cfg.tasks:
                continue
            idx = pick_prompts(td.prompts, label, cfg.prompts)
            sibling = {(s.track, s.start, s.label): s for s in td.prompts.segments}
            segs = [td.prompts.segments[i] for i in idx]
            keep = [k for k, s in enumerate(segs) if (s.track, s.start, 1 - label) in sibling]
            if not keep:
                continue
            prompt = self.resynth(td.prompts.load([idx[k] for k in keep]))
            after = _replace(td.prompts, seconds=cfg.duration, segments=[])
            for method, lab in ((TRUE, label), (STEM, 1 - label)):
                chosen = [sibling[(segs[k].track, segs[k].start, lab)] for k in keep]
                later = [_replace(s, start=round(s.start + cfg.prompt_seconds, 3)) for s in chosen]
                audio = self.resynth(_replace(after, segments=later).load(range(len(later))))
                clf_p, clf_s = self.classifiers[trait].present(audio, self.sr)
                cnn_p, cnn_s = self.cnns[trait].present(audio, self.sr)
                extra = self.keep_fields(trait, audio, prompt)
                for n, k in enumerate(keep):
                    out.append(
                        {
                            "trait": trait,
                            "task": task,
                            "method": method,
                            "alpha": None,
                            "clip": n,
                            "prompt": k,
                            "segment": int(idx[k]),
                            "seed": 0,
                            "rep": 0,
                            "clf_prob": float(clf_s[n]),
                            "clf_present": bool(clf_p[n]),
                            "cnn_prob": float(cnn_s[n]),
                            "cnn_present": bool(cnn_p[n]),
                            **extra[n],
                        }
                    )
        return out

    def jobs(self, trait: str) -> list[Job]:
        """Rows of one trait: the table at `alpha` plus the alpha sweep (continuation, ITI and SMITIN)."""
        has_text = self.backbone.processor is not None
        return plan_jobs(self.cfg, trait, self.data[trait], self.root, has_text, self.notes)

    def steers(self, job: Job) -> list[Steer]:
        return job.steers(self.probes[job.trait], self.cfg) if job.steered else []

    def kept_steers(self, job: Job) -> list[list[Steer]] | None:
        """A keep row's per-prompt holding steers (the other traits' probes); None for other rows."""
        return job.kept_steers(self.probes, self.cfg)

    def row_path(self, job: Job) -> tuple[dict[str, Any], Path, str]:
        """A row's cache key, its cache file and its name."""
        cfg, trait = self.cfg, job.trait
        ident = job.ident()
        tau = job.threshold(cfg)
        key = {
            **ident,
            **cfg.key(),
            "iti_heads": cfg.iti_heads,
            # the effective tau ("paper" keyed as None, as before recipes named their threshold)
            "threshold": tau if job.steered and job.recipe(cfg).monitor and tau != "paper" else None,
            "weights": self.digest,
            "texts": job.texts,
            "clap": str(cfg.clap),
            **({"held": job.held} if job.held is not None else {}),
            # (the default fixed shift is left out: rows cached before edits had a choice stay valid)
            "recipe": {
                k: v
                for k, v in asdict(job.recipe(cfg)).items()
                if k != "threshold" and not (k == "edit" and v == "shift")
            }
            if job.steered
            else None,
            "v": ROW_VERSION,
            "judges": [JUDGE_VERSION, JUDGE_NOISE],  # rows hold the judges' verdicts
        }
        if cfg.batch_rows:  # other clips (each its own seed): never mixed with unbatched rows
            key["batch_rows"] = True
        h = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        name = f"{trait}-{job.task}-{job.method}-{ident['alpha']}"
        return key, cfg.out / "rows" / f"{name}-{h}.json", name

    def generate_together(self, jobs: list[Job]) -> dict[int, tuple[Batch, float]]:
        """`--batch-rows`: the rows not cached yet, generated together per trait, task and schedule
        (`rows.generate_rows`); {id(job): (batch, seconds)} for `row`."""
        todo = [j for j in jobs if not self.row_path(j)[1].exists()]
        groups: dict[tuple, list[Job]] = {}
        for job in todo:
            every = job.options(self.cfg, 0).every
            groups.setdefault((job.trait, job.task, job.lane, every), []).append(job)
        out: dict[int, tuple[Batch, float]] = {}
        for group in groups.values():
            t0 = time.time()
            batches = generate_rows(
                self.backbone,
                group,
                [self.steers(j) for j in group],
                self.cfg,
                [self.kept_steers(j) for j in group],
            )
            share = (time.time() - t0) / len(group)
            out.update({id(j): (b, share) for j, b in zip(group, batches, strict=True)})
        return out

    def row(self, job: Job, made: tuple[Batch, float] | None = None) -> tuple[Row, list[Clip]]:
        """Generate (or take from `made`) and judge one row (cached as JSON by its settings)."""
        cfg, trait = self.cfg, job.trait
        ident = job.ident()
        key, path, name = self.row_path(job)
        if path.exists():
            cached = json.loads(path.read_text())
            return cached["row"], cached["clips"]
        t0 = time.time()
        if made is not None:
            batch, gen_s = made
        else:
            batch = generate_row(self.backbone, job, self.steers(job), cfg, self.kept_steers(job))
            gen_s = time.time() - t0
        target = job.task != "removal"
        det_p, det_s = self.detectors[trait].present(batch.audio, self.sr)
        clf_p, clf_s = self.classifiers[trait].present(batch.audio, self.sr)
        cnn_p, cnn_s = self.cnns[trait].present(batch.audio, self.sr)
        emb = window_embeddings(batch.audio, self.sr)
        extra = self.keep_fields(trait, batch.audio, batch.prompt)
        row: Row = {
            **ident,
            "sweep": job.sweep,
            "n": len(batch.audio),
            "success_probe": float((det_p == target).mean()),
            "success_clf": float((clf_p == target).mean()),
            "probe_score": float(det_s.mean()),
            "clf_prob": float(clf_s.mean()),
            "success_cnn": float((cnn_p == target).mean()),
            "cnn_prob": float(cnn_s.mean()),
            "fad": fad(emb, self.ref_emb),
            "nll": float(token_nll(self.backbone, batch.codes, batch.start).mean()),
            "mean_gain": batch.mean_gain,
            "share_applied": batch.share_applied,
            "gen_seconds": round(gen_s, 1),
            "example_text": job.example_text,
            **{k: float(np.mean([d[k] for d in extra])) for k in KEEP_MEANS if k in extra[0]},
        }
        if batch.prompt is not None:
            whole, edge = continuation_similarity(batch.prompt, batch.audio, self.sr, self.standardise)
            row["similarity"], row["boundary_similarity"] = float(whole.mean()), float(edge.mean())
        else:
            row["similarity"] = row["boundary_similarity"] = float("nan")
        clap_s = None
        if self.clap and self.ref_clap is not None:
            clap_s = self.clap.proba(batch.audio, self.sr, trait)
            row["success_clap"] = float(((clap_s >= 0.5) == target).mean())
            row["fad_clap"] = frechet_distance(self.clap.embed(batch.audio, self.sr), self.ref_clap)
        clips: list[Clip] = [
            {
                **ident,
                "clip": i,
                "prompt": int(batch.prompt_index[i]),
                "segment": int(job.segments[batch.prompt_index[i]]) if job.segments else None,
                "seed": int(batch.seeds[i]),
                "rep": i % cfg.seeds,
                "probe_score": float(det_s[i]),
                "probe_present": bool(det_p[i]),
                "clf_prob": float(clf_s[i]),
                "clf_present": bool(clf_p[i]),
                "cnn_prob": float(cnn_s[i]),
                "cnn_present": bool(cnn_p[i]),
                **({"clap_prob": float(clap_s[i])} if clap_s is not None else {}),
                **extra[i],
            }
            for i in range(len(det_s))
        ]
        from ..audio import write

        write(cfg.out / "audio" / f"{name}.wav", batch.audio[0], self.sr)
        with atomic(path) as tmp:  # another rank may read the rows folder at any time
            tmp.write_text(json.dumps({"key": key, "row": row, "clips": clips}, indent=1, default=str))
        return row, clips


def run_experiment(cfg: Config, command: str | None = None, backbone: Backbone | None = None) -> Results:
    """Run (or resume) the whole experiment; writes results.csv, clips.csv, results.md, plots.

    `backbone` overrides `cfg.model` (an already loaded model, e.g. in tests).
    """

    with joined(str(cfg.device)) as world:
        return _run(cfg, command, backbone, world)


def _run(cfg: Config, command: str | None, backbone: Backbone | None, world: World) -> Results:
    """The experiment on one rank. Under torchrun rank 0 prepares data, probes and judges first (the
    others then find them cached), the rows are split by index (row i on rank i % size, each row
    seeded on its own, so the table does not depend on the split), and rank 0 assembles the table
    and runs the automation part; the other ranks return an empty result."""
    from .plots import plot_frontier, plot_results

    t0 = time.time()
    if world.distributed and backbone is None:
        cfg = replace(cfg, device=world.device(str(cfg.device)))
    if cfg.threads > 0 and str(cfg.device).startswith("cpu"):
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    if not world.main:
        barrier(world)  # rank 0 has rendered the data, fitted the probes and the judges
    exp = Experiment(cfg, backbone)
    rows: list[Row] = []
    clips: list[Clip] = []
    for trait in cfg.traits:
        exp.prepare_trait(trait)
    if world.main:
        barrier(world)
    jobs = [j for t in cfg.traits for j in exp.jobs(t)]
    bar = tqdm(total=len(jobs), desc="experiment", unit="row", disable=not (cfg.progress and world.main))
    made = exp.generate_together([jobs[i] for i in world.mine(len(jobs))]) if cfg.batch_rows else {}
    for i in world.mine(len(jobs)):
        bar.set_postfix_str(jobs[i].describe())
        exp.row(jobs[i], made.get(id(jobs[i])))
        bar.update(min(len(jobs), i + world.size) - bar.n)
    bar.close()
    barrier(world)  # every row is on disk
    if not world.main:
        return _empty()
    for job in jobs:  # cached rows: read back in the table's order
        r, c = exp.row(job)
        rows.append(r)
        clips.extend(c)
    auto: list[dict[str, Any]] = []
    auto_md = ""
    if AUTOMATION in cfg.tasks:
        auto, auto_md = run_automation(exp)
        write_csv(cfg.out / "automation.csv", automation_table(auto))
    add_nll_shift(rows)
    entries = headline(rows, clips)
    add_paired_columns(rows, entries)
    references = [c for t in cfg.traits for c in exp.references(t)] if rows else []
    kept = keeping(rows, clips, references)
    add_keep_columns(rows, kept)
    clean = headline(rows, clips, CLEAN_JUDGES)
    if rows or not auto:
        write_csv(cfg.out / "results.csv", rows)
        write_csv(cfg.out / "clips.csv", clips)
        write_csv(cfg.out / "references.csv", references)
    agreement = judge_agreement(rows, clips)
    plots = plot_results(cfg, rows)
    if kept:
        plots.append(plot_frontier(frontier_points(kept, entries), cfg.out / "plots" / "frontier.png"))
    info = {
        "smitin": __version__,
        "model": cfg.model,
        "model_digest": exp.digest,
        "layout": exp.backbone.layout.fingerprint(),
        "data": str(exp.root),
        "split": {k: len(v) for k, v in exp.split.items()},
        "minutes": round((time.time() - t0) / 60, 1),
        "command": command,
    }
    if rows or not auto:
        md = markdown(
            cfg, rows, entries, exp.judge_info, agreement, exp.notes, info, plots, keep=kept, clean=clean
        )
        md = md + ("\n" + auto_md if auto_md else "")
    else:  # the automation part alone
        md = header(cfg, info) + "\n\n" + auto_md
    (cfg.out / "results.md").write_text(md)
    cfg_dict = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    (cfg.out / "config.json").write_text(json.dumps({"config": cfg_dict, **info}, indent=1))
    return {
        "rows": rows,
        "clips": clips,
        "judges": exp.judge_info,
        "agreement": agreement,
        "headline": entries,
        "keeping": kept,
        "markdown": md,
        "automation": auto,
    }


def _empty() -> Results:
    """What a rank other than 0 returns: its rows are on disk, rank 0 assembles them."""
    return {
        "rows": [],
        "clips": [],
        "judges": {},
        "agreement": {},
        "headline": [],
        "keeping": [],
        "markdown": "",
        "automation": [],
    }
