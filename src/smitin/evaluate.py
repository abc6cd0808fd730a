"""`smitin experiment`: the paper's experiment table, in one command.

For each trait and task (continuation from prompts without the instrument; text-to-music;
removal from prompts with it) the rows are: no control, text asking for it, ITI (top-K heads,
always on), soft weights without the monitor (an ablation that isolates the monitor), SMITIN
(soft weights + monitor) and SMITIN + text. Every row is judged twice (the model's own probes,
and a classifier that never saw model output), and scored for quality (FAD to rendered music)
and coherence (prompt/continuation similarity, the unsteered model's likelihood).

Songs are split by track into three disjoint parts: probe training, classifier training, and
evaluation (prompts, captions, reference music, judge accuracy). Results are cached row by row
in the output folder, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import judges as J
from .backbone import Backbone
from .generate import Result, continue_audio
from .generate import generate as _generate
from .options import GenerationOptions
from .probes import ProbeSet
from .steering import Steer
from .version import __version__

TASKS = ("continuation", "text-to-music", "removal")
METHODS = ("none", "text", "iti", "soft-no-monitor", "smitin", "smitin+text")
LABELS = {
    "none": "no control",
    "text": "text",
    "iti": "ITI (top-K, no monitor)",
    "soft-no-monitor": "soft weights, no monitor",
    "smitin": "SMITIN",
    "smitin+text": "SMITIN + text",
}
SWEEP_METHODS = ("iti", "soft-no-monitor", "smitin")  # the alpha sweep; soft-no-monitor isolates the monitor
REFERENCE_TRAITS = ("drums", "bass", "guitar", "piano")  # full mixes where these play: the FAD reference
SPLIT = (0.5, 0.25)  # shares of tracks for probes and the classifier; the rest is evaluation


@dataclass
class Config:
    """Everything that determines the table (written to config.json beside it)."""

    out: Path = Path("experiment")
    model: str = "bundled"
    device: str = "cpu"
    data: Path | None = None
    songs: int = 50
    data_seed: int = 0
    traits: list[str] = field(default_factory=lambda: ["drums", "bass", "guitar", "piano"])
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    prompts: int = 8
    seeds: int = 2
    seed: int = 0
    duration: float = 4.0
    prompt_seconds: float = 3.0
    alpha: float = 5.0
    alphas: list[float] = field(default_factory=lambda: [2.0, 5.0, 10.0, 20.0])
    iti_heads: int = 16
    threshold: float | None = None  # monitor threshold of the SMITIN rows (None: the paper's)
    every: int = 5
    guidance: float = 3.0
    batch: int = 16
    per_track: int = 6
    clap: Path | None = None
    threads: int = 1  # on a busy CPU one thread beats two by 5-15x (no spin-waiting); 0 = torch's choice
    quick: bool = False
    progress: bool = True

    def options(self, seed: int) -> GenerationOptions:
        """How every row generates (the seed varies by chunk)."""
        return GenerationOptions(
            duration=self.duration, seed=seed, guidance_scale=self.guidance, every=self.every
        )

    def key(self) -> dict:
        """The settings a cached row depends on."""
        keep = ("duration", "prompt_seconds", "every", "guidance", "batch", "prompts", "seeds", "seed")
        return {k: getattr(self, k) for k in keep}


QUICK = dict(
    traits=["drums", "bass"], prompts=3, seeds=2, duration=3.0, alphas=[2.0, 5.0, 10.0], per_track=3, songs=24
)


# ----------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Config()
    p.add_argument(
        "--quick", action="store_true", help="a small run that finishes in minutes on a laptop CPU"
    )
    p.add_argument("--out", type=Path, default=d.out, help="output folder (results, caches, plots)")
    p.add_argument("--model", default=d.model, help="MusicGen: 'bundled' (default), a hub id or a folder")
    p.add_argument("--device", default=d.device, help="torch device (default cpu)")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="stem collection (plain layout DIR/<song>/<stem>.wav, or MUSDB18-HQ/MoisesDB/Slakh); "
        "default: render --songs songs with `smitin data synth` into OUT/data",
    )
    p.add_argument(
        "--songs", type=int, default=None, help=f"songs to render without --data (default {d.songs})"
    )
    p.add_argument("--data-seed", type=int, default=d.data_seed, help="renderer seed (default 0)")
    p.add_argument("--traits", default=None, help="comma-separated traits (default drums,bass,guitar,piano)")
    p.add_argument("--tasks", default=",".join(d.tasks), help=f"comma-separated from {', '.join(TASKS)}")
    p.add_argument(
        "--methods", default=",".join(d.methods), help=f"comma-separated from {', '.join(METHODS)}"
    )
    p.add_argument(
        "--prompts", type=int, default=None, help=f"prompts (audio or captions) per row (default {d.prompts})"
    )
    p.add_argument("--seeds", type=int, default=None, help=f"samples per prompt (default {d.seeds})")
    p.add_argument("--seed", type=int, default=d.seed, help="base random seed (default 0)")
    p.add_argument(
        "--duration", type=float, default=None, help=f"seconds generated per sample (default {d.duration})"
    )
    p.add_argument("--alpha", type=float, default=d.alpha, help="steering strength of the table (default 5)")
    p.add_argument(
        "--alphas",
        default=None,
        help="alpha sweep (ITI, soft weights without monitor, SMITIN) on continuation (default 2,5,10,20)",
    )
    p.add_argument("--iti-heads", type=int, default=d.iti_heads, help="K of the ITI rows (default 16)")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="monitor threshold of the SMITIN rows (default: the paper's median(acc) - std(acc))",
    )
    p.add_argument("--batch", type=int, default=d.batch, help="samples generated at once (default 16)")
    p.add_argument(
        "--clap", type=Path, default=None, help="local CLAP checkpoint folder: adds a zero-shot judge"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help="torch CPU threads (default 1: on a shared CPU one thread is many times faster; 0 = torch's choice)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> Config:
    base = {**asdict(Config()), **(QUICK if args.quick else {})}
    for name in ("songs", "prompts", "seeds", "duration"):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    if args.traits:
        base["traits"] = _split(args.traits)
    if args.alphas:
        base["alphas"] = [float(a) for a in _split(args.alphas)]
    tasks, methods = _split(args.tasks), _split(args.methods)
    for name, got, allowed in (("task", tasks, TASKS), ("method", methods, METHODS)):
        bad = [x for x in got if x not in allowed]
        if bad:
            raise SystemExit(f"smitin experiment: unknown {name} {bad}; choose from {', '.join(allowed)}")
    base.update(
        out=args.out,
        model=args.model,
        device=args.device,
        data=args.data,
        data_seed=args.data_seed,
        tasks=tasks,
        methods=methods,
        seed=args.seed,
        alpha=args.alpha,
        iti_heads=args.iti_heads,
        threshold=args.threshold,
        batch=args.batch,
        clap=args.clap,
        threads=args.threads,
        quick=args.quick,
        progress=not args.quiet,
    )
    return Config(**base)


def _split(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    command = "smitin " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    results = run_experiment(cfg, command=command)
    print(results["markdown"])
    print(f"wrote {cfg.out / 'results.md'}, {cfg.out / 'results.csv'} and plots in {cfg.out / 'plots'}")
    return 0


# ----------------------------------------------------------------------------- data
@dataclass
class TraitData:
    """One trait's segment sets, split by track."""

    probe: Any  # SegmentSet (3 s, probe tracks)
    judge: Any  # SegmentSet (duration, classifier tracks)
    judge_eval: Any  # SegmentSet (duration, evaluation tracks): judge accuracy
    prompts: Any  # SegmentSet (prompt_seconds, evaluation tracks): continuation prompts


def split_tracks(names, seed: int, shares: tuple[float, float] = SPLIT) -> dict[str, set[str]]:
    """Tracks -> probe / judge / eval sets, disjoint, the same for every trait.

    From 20 tracks on, each track's side depends on a seeded hash of its name alone, so a run on
    some traits and a run on others (sharing one output folder) agree; fewer tracks are ranked by
    that hash and cut in proportion so that no side is empty.
    """
    names = sorted(set(names))
    u = {n: int(hashlib.sha256(f"{seed}:{n}".encode()).hexdigest()[:12], 16) / 16**12 for n in names}
    if len(names) >= 20:
        a, b = shares[0], shares[0] + shares[1]
        return {
            "probe": {n for n in names if u[n] < a},
            "judge": {n for n in names if a <= u[n] < b},
            "eval": {n for n in names if u[n] >= b},
        }
    ranked = sorted(names, key=u.get)
    n = len(ranked)
    a = max(2, round(shares[0] * n)) if n >= 4 else max(1, n - 2)
    b = max(1, round(shares[1] * n))
    return {"probe": set(ranked[:a]), "judge": set(ranked[a : a + b]), "eval": set(ranked[a + b :])}


def prepare_data(
    cfg: Config, sample_rate: int
) -> tuple[Path, dict[str, TraitData], dict[str, set[str]], dict]:
    """Render (if needed) and segment the data; the split, and the FAD reference sets, by track."""
    from .data import DataError, stem_segments

    root = cfg.data
    if root is None:
        from .synth import render_dataset

        root = cfg.out / "data"
        print(f"rendering {cfg.songs} songs (seed {cfg.data_seed}) into {root} ...", file=sys.stderr)
        render_dataset(root, songs=cfg.songs, seed=cfg.data_seed, sample_rate=16000, progress=cfg.progress)
    opts = dict(sample_rate=sample_rate, max_segments_per_track=cfg.per_track)
    sets = {}
    for trait in dict.fromkeys([*cfg.traits, *REFERENCE_TRAITS]):
        if trait not in cfg.traits:  # only for the FAD reference, which must not depend on --traits
            try:
                sets[trait] = {"long": stem_segments(root, trait, seconds=cfg.duration, **opts)}
            except DataError:
                pass
            continue
        sets[trait] = {
            "probe": stem_segments(root, trait, seconds=3.0, **opts),
            "long": stem_segments(root, trait, seconds=cfg.duration, **opts),
            "prompt": stem_segments(root, trait, seconds=cfg.prompt_seconds, **opts),
        }
    names = {s.track for v in sets.values() for seg in v.values() for s in seg.segments}
    split = split_tracks(names, cfg.data_seed)
    reference = {t: v["long"].subset(split["eval"]) for t, v in sets.items() if t in REFERENCE_TRAITS}
    out = {
        t: TraitData(
            v["probe"].subset(split["probe"]),
            v["long"].subset(split["judge"]),
            v["long"].subset(split["eval"]),
            v["prompt"].subset(split["eval"]),
        )
        for t, v in sets.items()
        if t in cfg.traits
    }
    return Path(root), out, split, reference


def _meta(root: Path, track: str) -> dict:
    path = root / track / "meta.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _words(names) -> str:
    names = [n.replace("_", " ") for n in names]
    if not names:
        return "music"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _caption(style: str, present: list[str], absent: str | None = None) -> str:
    art = "an" if style[:1] in "aeiou" else "a"
    text = f"{art} {style} groove with {_words(present)}"
    return text + (f", without {absent.replace('_', ' ')}" if absent else "")


def pick_prompts(segs, label: int, n: int) -> list[int]:
    """n segment indices with the given label, spread over tracks (round robin, cycling if short)."""
    by_track: dict[str, list[int]] = {}
    for i, s in enumerate(segs.segments):
        if s.label == label:
            by_track.setdefault(s.track, []).append(i)
    if not by_track:
        return []
    order, tracks, depth = [], sorted(by_track), 0
    while len(order) < n and depth < 1000:
        for t in tracks:
            if depth < len(by_track[t]):
                order.append(by_track[t][depth])
        depth += 1
    return [order[i % len(order)] for i in range(n)]


# ----------------------------------------------------------------------------- generation
def _continue_batch(
    backbone: Backbone, waves: np.ndarray, texts: list[str] | None, steers, cfg: Config, seed: int
) -> Result:
    """Continue B different prompts (equal lengths) in one batch."""
    return continue_audio(
        backbone,
        list(waves),
        backbone.sample_rate,
        texts,
        steer=steers,
        options=cfg.options(seed),
        progress=False,
    )


@dataclass
class Batch:
    """Generated clips of one row, with what the metrics need."""

    audio: np.ndarray  # [N, S] the new audio only
    prompt: np.ndarray | None  # [N, S'] continuation prompts
    codes: torch.Tensor  # [N, K, T] prompt + new frames
    start: int  # first new frame
    mean_gain: float
    share_applied: float


def generate_row(backbone: Backbone, job: dict, steers: list[Steer], cfg: Config) -> Batch:
    """All samples of one row: each prompt x `seeds`, in chunks of `batch` (seed = base + chunk)."""
    reps = cfg.seeds
    texts = [t for t in job["texts"] for _ in range(reps)] if job["texts"] else None
    waves = np.repeat(job["waves"], reps, axis=0) if job["waves"] is not None else None
    n = len(texts) if texts else len(waves) if waves is not None else job["count"] * reps
    audio, codes, prompts, gains, shares, weights = [], [], [], [], [], []
    start = 0
    for c, i in enumerate(range(0, n, cfg.batch)):
        sl = slice(i, min(n, i + cfg.batch))
        seed = cfg.seed + c
        if waves is not None:
            r = _continue_batch(backbone, waves[sl], texts[sl] if texts else None, steers, cfg, seed)
            p = waves.shape[1]
            start = r.codes.shape[-1] - int(round(cfg.duration * backbone.frame_rate))
            audio.append(r.audio[:, p:])
            prompts.append(r.audio[:, :p])  # the prompt as decoded by the codec: same domain as the rest
        else:
            prompt = texts[sl] if texts else None
            options = replace(cfg.options(seed), batch=sl.stop - sl.start)
            r = _generate(backbone, prompt, steer=steers, options=options, progress=False)
            audio.append(r.audio)
        codes.append(r.codes)
        if steers:
            gains.append(r.trace.mean_gain()[steers[0].name])
            shares.append(r.trace.share_applied()[steers[0].name])
            weights.append(sl.stop - sl.start)
    length = min(a.shape[1] for a in audio)
    return Batch(
        np.concatenate([a[:, :length] for a in audio]),
        np.concatenate(prompts) if prompts else None,
        torch.cat(codes),
        start,
        float(np.average(gains, weights=weights)) if gains else float("nan"),
        float(np.average(shares, weights=weights)) if shares else float("nan"),
    )


# ----------------------------------------------------------------------------- experiment
class Experiment:
    """State shared by all rows: model, data, judges, reference embeddings."""

    def __init__(self, cfg: Config, backbone: Backbone | None = None) -> None:
        from .backbone import load

        self.cfg = cfg
        cfg.out.mkdir(parents=True, exist_ok=True)
        self.backbone = backbone or load(cfg.model, device=cfg.device)
        self.sr = self.backbone.sample_rate
        self.root, self.data, self.split, self.reference_sets = prepare_data(cfg, self.sr)
        self.clap, self.notes = J.optional_judges(cfg.clap)
        self.digest = self.backbone.weights_digest()
        self.probes: dict[str, ProbeSet] = {}
        self.detectors: dict[str, J.ProbeDetector] = {}
        self.classifiers: dict[str, J.ClassifierJudge] = {}
        self.judge_info: dict[str, dict] = {}
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
        self.ref_emb = J.window_embeddings(self.reference_audio, self.sr)
        self.standardise = J.Standardiser.fit(self.ref_emb)
        self.ref_clap = self.clap.embed(self.reference_audio, self.sr) if self.clap else None

    # -- per trait -------------------------------------------------------------------------
    def prepare_trait(self, trait: str) -> None:
        """Probes (cached), the classifier judge (cached) and both judges' accuracy on eval tracks."""
        from .probes import fit_cached

        cfg, td = self.cfg, self.data[trait]
        path = cfg.out / "probes" / f"{trait}.safetensors"
        probes = fit_cached(self.backbone, td.probe, path, progress=cfg.progress)
        self.probes[trait] = probes
        self.detectors[trait] = J.ProbeDetector(self.backbone, probes)

        jpath = cfg.out / "judges" / f"{trait}.safetensors"
        key = {"weights": self.digest, "train": td.judge.fingerprint(), "eval": td.judge_eval.fingerprint()}
        judge = J.ClassifierJudge.load(jpath) if jpath.exists() else None
        if judge is None or judge.info.get("key") != key:
            audio, labels = td.judge.load(range(len(td.judge))), td.judge.labels()
            both = np.concatenate([audio, self.resynth(audio)])
            judge = J.ClassifierJudge.train(trait, both, np.concatenate([labels, labels]), self.sr, key=key)
            ev, ev_labels = td.judge_eval.load(range(len(td.judge_eval))), td.judge_eval.labels()
            ev_rs = self.resynth(ev)
            det_p, det_s = self.detectors[trait].present(ev_rs, self.sr)
            clf_p, clf_s = judge.present(ev_rs, self.sr)
            judge.accuracy = {
                "original": judge.score(ev, ev_labels, self.sr),
                "resynthesised": float((clf_p == ev_labels.astype(bool)).mean()),
                "auc_resynthesised": J.auc(ev_labels, clf_s),
                "probe_detector_resynthesised": float((det_p == ev_labels.astype(bool)).mean()),
                "probe_detector_auc": J.auc(ev_labels, det_s),
                "eval_clips": int(len(ev_labels)),
            }
            if self.clap:
                judge.accuracy["clap_resynthesised"] = float(
                    ((self.clap.proba(ev_rs, self.sr, trait) >= 0.5) == ev_labels.astype(bool)).mean()
                )
            judge.save(jpath)
        self.classifiers[trait] = judge
        acc = probes.accuracy
        self.judge_info[trait] = {
            "probe_best": float(acc.max()),
            "probe_median": float(acc.median()),
            "probe_top16_mean": float(acc.flatten()[probes.top(16)].mean()),
            "threshold": probes.threshold(),
            "probe_tracks": len({s.track for s in td.probe.segments}),
            "judge_tracks": len({s.track for s in td.judge.segments}),
            "eval_tracks": len({s.track for s in td.judge_eval.segments}),
            "classifier_train_clips": judge.info.get("train_clips"),
            **{f"acc_{k}": v for k, v in judge.accuracy.items()},
        }

    def jobs(self, trait: str) -> list[dict]:
        """Rows of one trait: the table at `alpha` plus the alpha sweep (continuation, ITI and SMITIN)."""
        cfg, td = self.cfg, self.data[trait]
        has_text = self.backbone.processor is not None
        out = []
        for task in cfg.tasks:
            label = 1 if task == "removal" else 0  # removal starts from mixes WITH the trait
            idx = pick_prompts(td.prompts, label, cfg.prompts)
            if not idx:
                self.notes.append(f"{trait}/{task}: no prompt segments on the evaluation tracks; skipped")
                continue
            segs = [td.prompts.segments[i] for i in idx]
            styles = [_meta(self.root, s.track).get("style", "pop") for s in segs]
            stems = [[Path(p).stem for p in s.sources] for s in segs]
            waves = None if task == "text-to-music" else td.prompts.load(idx)
            for method in cfg.methods:
                use_text = method in ("text", "smitin+text")
                if task == "text-to-music":  # captions of the prompt mixes (without the trait), +/- the trait
                    texts = [
                        _caption(st, [*sm, trait] if use_text else sm)
                        for st, sm in zip(styles, stems, strict=True)
                    ]
                elif task == "continuation":
                    texts = (
                        [_caption(st, [*sm, trait]) for st, sm in zip(styles, stems, strict=True)]
                        if use_text
                        else None
                    )
                else:
                    texts = (
                        [
                            _caption(st, [n for n in sm if n != trait], absent=trait)
                            for st, sm in zip(styles, stems, strict=True)
                        ]
                        if use_text
                        else None
                    )
                if texts and not has_text:
                    if method in ("text", "smitin+text"):
                        self.notes.append(
                            f"{trait}/{task}/{method}: the model has no text processor; skipped"
                        )
                        continue
                    texts = None
                alphas = (
                    [cfg.alpha]
                    if task != "continuation" or method not in SWEEP_METHODS
                    else sorted({cfg.alpha, *cfg.alphas})
                )
                for alpha in alphas if method not in ("none", "text") else [float("nan")]:
                    out.append(
                        {
                            "trait": trait,
                            "task": task,
                            "method": method,
                            "alpha": alpha,
                            "sweep": bool(alpha == alpha and alpha != cfg.alpha),
                            "texts": texts,
                            "waves": waves,
                            "count": len(idx),
                            "example_text": texts[0] if texts else "",
                        }
                    )
        return out

    def steers(self, job: dict) -> list[Steer]:
        m = job["method"]
        if m in ("none", "text"):
            return []
        sign = -1.0 if job["task"] == "removal" else 1.0
        heads = self.cfg.iti_heads if m == "iti" else "soft"
        return [
            Steer(
                self.probes[job["trait"]],
                alpha=sign * job["alpha"],
                heads=heads,
                monitor=m.startswith("smitin"),
                threshold=self.cfg.threshold,
            )
        ]

    def row(self, job: dict) -> tuple[dict, list[dict]]:
        """Generate and judge one row (cached as JSON by its settings)."""
        cfg, trait = self.cfg, job["trait"]
        ident = {k: job[k] for k in ("trait", "task", "method", "alpha")}
        ident["alpha"] = None if ident["alpha"] != ident["alpha"] else ident["alpha"]
        key = {
            **ident,
            **cfg.key(),
            "iti_heads": cfg.iti_heads,
            "threshold": cfg.threshold if job["method"].startswith("smitin") else None,
            "weights": self.digest,
            "texts": job["texts"],
            "clap": str(cfg.clap),
            "v": 2,
        }
        h = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = cfg.out / "rows" / f"{trait}-{job['task']}-{job['method']}-{ident['alpha']}-{h}.json"
        if path.exists():
            cached = json.loads(path.read_text())
            return cached["row"], cached["clips"]
        t0 = time.time()
        batch = generate_row(self.backbone, job, self.steers(job), cfg)
        gen_s = time.time() - t0
        target = job["task"] != "removal"
        det_p, det_s = self.detectors[trait].present(batch.audio, self.sr)
        clf_p, clf_s = self.classifiers[trait].present(batch.audio, self.sr)
        emb = J.window_embeddings(batch.audio, self.sr)
        row = {
            **ident,
            "sweep": job["sweep"],
            "n": len(batch.audio),
            "success_probe": float((det_p == target).mean()),
            "success_clf": float((clf_p == target).mean()),
            "probe_score": float(det_s.mean()),
            "clf_prob": float(clf_s.mean()),
            "fad": J.fad(emb, self.ref_emb),
            "nll": float(J.token_nll(self.backbone, batch.codes, batch.start).mean()),
            "mean_gain": batch.mean_gain,
            "share_applied": batch.share_applied,
            "gen_seconds": round(gen_s, 1),
            "example_text": job["example_text"],
        }
        if batch.prompt is not None:
            whole, edge = J.continuation_similarity(batch.prompt, batch.audio, self.sr, self.standardise)
            row["similarity"], row["boundary_similarity"] = float(whole.mean()), float(edge.mean())
        else:
            row["similarity"] = row["boundary_similarity"] = float("nan")
        clap_s = None
        if self.clap:
            clap_s = self.clap.proba(batch.audio, self.sr, trait)
            row["success_clap"] = float(((clap_s >= 0.5) == target).mean())
            row["fad_clap"] = J.frechet_distance(self.clap.embed(batch.audio, self.sr), self.ref_clap)
        clips = [
            {
                **ident,
                "clip": i,
                "probe_score": float(det_s[i]),
                "probe_present": bool(det_p[i]),
                "clf_prob": float(clf_s[i]),
                "clf_present": bool(clf_p[i]),
                **({"clap_prob": float(clap_s[i])} if clap_s is not None else {}),
            }
            for i in range(len(det_s))
        ]
        from .audio import write

        write(
            cfg.out / "audio" / f"{trait}-{job['task']}-{job['method']}-{ident['alpha']}.wav",
            batch.audio[0],
            self.sr,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "row": row, "clips": clips}, indent=1, default=str))
        return row, clips


def run_experiment(cfg: Config, command: str | None = None, backbone: Backbone | None = None) -> dict:
    """Run (or resume) the whole experiment; writes results.csv, clips.csv, results.md, plots.

    `backbone` overrides `cfg.model` (an already loaded model, e.g. in tests).
    """
    t0 = time.time()
    if cfg.threads > 0 and str(cfg.device).startswith("cpu"):
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    exp = Experiment(cfg, backbone)
    rows, clips = [], []
    for trait in cfg.traits:
        exp.prepare_trait(trait)
    jobs = [j for t in cfg.traits for j in exp.jobs(t)]
    bar = tqdm(jobs, desc="experiment", unit="row", disable=not cfg.progress)
    for job in bar:
        bar.set_postfix_str(f"{job['trait']} {job['task']} {job['method']} a={job['alpha']:g}")
        r, c = exp.row(job)
        rows.append(r)
        clips.extend(c)
    _add_nll_shift(rows)
    _write_csv(cfg.out / "results.csv", rows)
    _write_csv(cfg.out / "clips.csv", clips)
    agreement = _agreement(rows, clips)
    plots = _plots(cfg, rows)
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
    md = markdown(cfg, rows, exp.judge_info, agreement, exp.notes, info, plots)
    (cfg.out / "results.md").write_text(md)
    cfg_dict = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    (cfg.out / "config.json").write_text(json.dumps({"config": cfg_dict, **info}, indent=1))
    return {"rows": rows, "clips": clips, "judges": exp.judge_info, "agreement": agreement, "markdown": md}


def _add_nll_shift(rows: list[dict]) -> None:
    """NLL of each row minus that of the no-control row of its trait and task."""
    base = {(r["trait"], r["task"]): r["nll"] for r in rows if r["method"] == "none"}
    for r in rows:
        b = base.get((r["trait"], r["task"]))
        r["nll_shift"] = r["nll"] - b if b is not None else float("nan")


def _agreement(rows: list[dict], clips: list[dict]) -> dict:
    """How far the two judges agree: across rows (success rates) and across clips (scores, decisions)."""
    out = {
        "rows": len(rows),
        "row_success_r": J.pearson([r["success_probe"] for r in rows], [r["success_clf"] for r in rows]),
        "clip_score_r": J.pearson([c["probe_score"] for c in clips], [c["clf_prob"] for c in clips]),
        "clip_decision_agreement": float(np.mean([c["probe_present"] == c["clf_present"] for c in clips]))
        if clips
        else float("nan"),
        "clips": len(clips),
    }
    out["per_trait"] = {
        t: {
            "row_success_r": J.pearson(
                [r["success_probe"] for r in rows if r["trait"] == t],
                [r["success_clf"] for r in rows if r["trait"] == t],
            ),
            "clip_score_r": J.pearson(
                [c["probe_score"] for c in clips if c["trait"] == t],
                [c["clf_prob"] for c in clips if c["trait"] == t],
            ),
        }
        for t in dict.fromkeys(r["trait"] for r in rows)
    }
    if clips and "clap_prob" in clips[0]:
        out["clip_score_r_clap_clf"] = J.pearson(
            [c["clap_prob"] for c in clips], [c["clf_prob"] for c in clips]
        )
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("")
        return
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


# ----------------------------------------------------------------------------- report
def _mean(rows: list[dict], key: str) -> float:
    v = [r.get(key, float("nan")) for r in rows]
    v = [x for x in v if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else float("nan")


def _f(x: float, fmt: str = ".2f", pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.0f}%" if pct else format(x, fmt)


def summary_table(cfg: Config, rows: list[dict], task: str) -> str:
    """Method rows for one task at the table's alpha, averaged over traits."""
    sel = [r for r in rows if r["task"] == task and not r["sweep"]]
    clap = any("success_clap" in r for r in sel)
    head = "| method | success (probes) | success (classifier) |" + (" success (CLAP) |" if clap else "")
    head += (
        " mean C | FAD (log-mel) | similarity | boundary sim. | NLL shift | mean gain | steps edited | n |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for m in cfg.methods:
        rs = [r for r in sel if r["method"] == m]
        if not rs:
            continue
        cells = [LABELS[m], _f(_mean(rs, "success_probe"), pct=True), _f(_mean(rs, "success_clf"), pct=True)]
        if clap:
            cells.append(_f(_mean(rs, "success_clap"), pct=True))
        cells += [
            _f(_mean(rs, "probe_score"), ".3f"),
            _f(_mean(rs, "fad")),
            _f(_mean(rs, "similarity"), ".3f"),
            _f(_mean(rs, "boundary_similarity"), ".3f"),
            _f(_mean(rs, "nll_shift"), "+.3f"),
            _f(_mean(rs, "mean_gain")),
            _f(_mean(rs, "share_applied"), pct=True),
            str(sum(r["n"] for r in rs)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def trait_table(cfg: Config, rows: list[dict]) -> str:
    """Success per trait: probes / classifier, one column per task x method."""
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
                f"{_f(_mean(rs, 'success_probe'), pct=True)} / {_f(_mean(rs, 'success_clf'), pct=True)}"
                if rs
                else "-"
            )
        lines.append(f"| {trait} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(cfg: Config, rows: list[dict]) -> str:
    sel = [r for r in rows if r["task"] == "continuation" and r["method"] in SWEEP_METHODS]
    alphas = sorted({r["alpha"] for r in sel})
    lines = [
        "| method | alpha | success (probes) | success (classifier) | FAD | similarity | NLL shift | steps edited |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in SWEEP_METHODS:
        for a in alphas:
            rs = [r for r in sel if r["method"] == m and r["alpha"] == a]
            if rs:
                lines.append(
                    f"| {LABELS[m]} | {a:g} | {_f(_mean(rs, 'success_probe'), pct=True)} | {_f(_mean(rs, 'success_clf'), pct=True)} "
                    f"| {_f(_mean(rs, 'fad'))} | {_f(_mean(rs, 'similarity'), '.3f')} | {_f(_mean(rs, 'nll_shift'), '+.3f')} "
                    f"| {_f(_mean(rs, 'share_applied'), pct=True)} |"
                )
    return "\n".join(lines)


def judges_table(info: dict) -> str:
    lines = [
        "| trait | probe acc. best / median / top-16 mean | threshold tau | probe detector acc. (AUC) "
        "| classifier acc. original / resynthesised (AUC) | eval clips |",
        "|---|---|---|---|---|---|",
    ]
    for t, v in info.items():
        lines.append(
            f"| {t} | {v['probe_best']:.2f} / {v['probe_median']:.2f} / {v['probe_top16_mean']:.2f} | {v['threshold']:.3f} "
            f"| {v['acc_probe_detector_resynthesised']:.2f} ({v['acc_probe_detector_auc']:.2f}) "
            f"| {v['acc_original']:.2f} / {v['acc_resynthesised']:.2f} ({v['acc_auc_resynthesised']:.2f}) | {v['acc_eval_clips']} |"
        )
    return "\n".join(lines)


def markdown(cfg: Config, rows, judge_info, agreement, notes, info, plots) -> str:
    cmd = (
        info.get("command")
        or "smitin experiment " + ("--quick " if cfg.quick else "") + f"--out {cfg.out} --seed {cfg.seed}"
    )
    tau = (
        "the paper's median(acc) - std(acc)" if cfg.threshold is None else f"{cfg.threshold:g} (--threshold)"
    )
    parts = [
        f"# smitin experiment: {info['model']} ({info['layout']}, weights {info['model_digest']})",
        "",
        f"Command: `{cmd}` (smitin {info['smitin']}, {info['minutes']} min). Base seed {cfg.seed}; data "
        f"`{info['data']}` split by track into {info['split']['probe']} probe / {info['split']['judge']} classifier / "
        f"{info['split']['eval']} evaluation songs.",
        "",
        f"Each row: {cfg.prompts} prompts x {cfg.seeds} samples = {cfg.prompts * cfg.seeds} clips of {cfg.duration:g} s per "
        f"trait (continuation prompts: {cfg.prompt_seconds:g} s), alpha {cfg.alpha:g}, edits every {cfg.every} steps, "
        f"CFG {cfg.guidance:g}; ITI steers the top {cfg.iti_heads} heads with weight 1 and no monitor; SMITIN's monitor threshold is {tau}. Success = the "
        "trait present (continuation, text-to-music) or absent (removal). Values are means over the traits "
        f"{', '.join(cfg.traits)}.",
        "",
    ]
    for task in cfg.tasks:
        if any(r["task"] == task for r in rows):
            parts += [f"## {task}", "", summary_table(cfg, rows, task), ""]
    parts += ["## Success per trait (probes / classifier)", "", trait_table(cfg, rows), ""]
    if any(r["sweep"] for r in rows):
        parts += ["## Alpha sweep (continuation)", "", sweep_table(cfg, rows), ""]
    parts += [
        "## Judges",
        "",
        judges_table(judge_info),
        "",
        "Probe accuracy: validation accuracy of the per-head probes (held-out probe tracks). Detector and classifier "
        "accuracy: paired with/without clips of the evaluation tracks, which neither judge trained on "
        "(resynthesised = passed through the model's codec, the domain of generated audio). AUC is "
        "threshold-free: a detector can rank clips well (AUC near 1) yet decide badly at its threshold.",
        "",
        f"Agreement of the two judges: success rates across {agreement['rows']} rows r = {_f(agreement['row_success_r'])}; "
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
        "- success (probes): the model's own probes on the re-encoded clip: mean over positions after 1 s of "
        "C(t) = median probability of the 16 best heads, present when >= tau = median(acc) - std(acc).",
        "- mean C: that probe score averaged over the row's clips (moves even when it never crosses tau).",
        "- success (classifier): logistic regression on log-mel statistics (smitin.judges.clip_features, 16 kHz), "
        "trained on original and codec-resynthesised rendered mixes of the classifier tracks; present when p >= 0.5.",
        "- FAD (log-mel): Frechet distance between 0.5 s window embeddings (mean and std of 20 pooled log-mel bands, "
        "40-d, RMS-normalised clips) of a row's clips and of codec-resynthesised full mixes of the evaluation tracks. "
        "FAD on small sets is biased upwards; every row has the same number of clips, so compare rows, not absolute values.",
        "- similarity: cosine of mean window embeddings (z-scored by the reference set) of prompt and continuation; "
        "boundary: the prompt's last second against the continuation's first.",
        "- NLL shift: mean token negative log-likelihood (nats) of the row's new codes under the unsteered model "
        "(null text, teacher-forced, prompt as context) minus that of the no-control row.",
        "- mean gain / steps edited: `Result.trace.mean_gain()` / `share_applied()` (every 5th step is scheduled, "
        "so always-on steering edits 20% of steps).",
        "",
    ]
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(parts)


def _plots(cfg: Config, rows: list[dict]) -> list[Path]:
    """Success vs FAD per method and task; success and FAD against alpha."""
    from .plots import plt, save

    out = []
    main = [r for r in rows if not r["sweep"]]
    tasks = [t for t in cfg.tasks if any(r["task"] == t for r in main)]
    if tasks:
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
        colors = dict(zip(METHODS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
        for ax, task in zip(axes[0], tasks, strict=True):
            for m in cfg.methods:
                rs = [r for r in main if r["task"] == task and r["method"] == m]
                if not rs:
                    continue
                x = _mean(rs, "fad")
                ax.scatter(x, _mean(rs, "success_clf"), color=colors[m], marker="o", label=LABELS[m])
                ax.scatter(x, _mean(rs, "success_probe"), color=colors[m], marker="^", facecolors="none")
            ax.set_title(task)
            ax.set_xlabel("FAD to rendered music (lower = more realistic)")
            ax.set_ylabel("success rate")
            ax.set_ylim(-0.05, 1.05)
        axes[0][-1].legend(fontsize=6, loc="best")
        fig.suptitle(
            "success by the classifier (filled circles) and by the model's probes (open triangles)",
            fontsize=9,
        )
        out.append(save(fig, cfg.out / "plots" / "success_vs_fad.png"))
    sweep = [r for r in rows if r["task"] == "continuation" and r["method"] in SWEEP_METHODS]
    if len({r["alpha"] for r in sweep}) > 1:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        for m, color in (("iti", "tab:red"), ("soft-no-monitor", "tab:gray"), ("smitin", "tab:blue")):
            alphas = sorted({r["alpha"] for r in sweep if r["method"] == m})
            by = [[r for r in sweep if r["method"] == m and r["alpha"] == a] for a in alphas]
            a1.plot(
                alphas,
                [_mean(b, "success_clf") for b in by],
                "-o",
                color=color,
                label=f"{LABELS[m]}, classifier",
            )
            a1.plot(
                alphas,
                [_mean(b, "success_probe") for b in by],
                "--^",
                color=color,
                label=f"{LABELS[m]}, probes",
            )
            a2.plot(alphas, [_mean(b, "fad") for b in by], "-o", color=color, label=LABELS[m])
        a1.set_xlabel("alpha")
        a1.set_ylabel("success rate (continuation)")
        a1.set_ylim(-0.05, 1.05)
        a1.legend(fontsize=7)
        a2.set_xlabel("alpha")
        a2.set_ylabel("FAD (log-mel)")
        a2.legend(fontsize=7)
        out.append(save(fig, cfg.out / "plots" / "alpha_sweep.png"))
    return out
