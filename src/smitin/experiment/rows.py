"""The experiment's rows: what each one runs (`Job`), the list of them per trait, and their generation.

For each trait and task (continuation from prompts without the instrument; text-to-music;
removal from prompts with it) the rows are: no control, text asking for it, ITI (top-K heads,
always on), SMITIN's recipe without the monitor (an ablation that isolates the monitor), SMITIN
(`Config.recipe`, monitored), SMITIN + text, SMITIN with the paper's exact recipe, and SMITIN
holding the other traits that play in each prompt (keep mode, `smitin+keep`: continuation and
removal), plus an alpha sweep on continuation. Each steered row follows a recipe (`smitin.recipes`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbone import Backbone
from ..data.traits import playing
from ..generate import Result, continue_audio
from ..generate import generate as _generate
from ..options import GenerationOptions
from ..probes import ProbeSet
from ..recipes import Recipe, recipe
from ..steering import Steer
from .config import KEEP_METHODS, SWEEP_METHODS, TASKS, Config
from .split import TraitData, caption, pick_prompts, track_meta

TEXT_METHODS = ("text", "smitin+text")  # rows whose prompt asks for the change in words
UNSTEERED = ("none", "text")  # rows without steering (their alpha is NaN)


@dataclass
class Job:
    """One row of the table: which trait, task, method and strength, and its prompts."""

    trait: str
    task: str
    method: str
    alpha: float  # NaN for the unsteered rows
    sweep: bool  # a row of the alpha sweep, not of the table
    texts: list[str] | None  # one caption per prompt (None: unconditional)
    waves: np.ndarray | None  # [count, S] continuation prompts (None: text-to-music)
    count: int  # prompts
    example_text: str = ""
    segments: list[int] | None = None  # per prompt: its segment in the prompt set (names the prompt)
    lane: str | None = None  # the automation part: the lane steered rows follow (`smitin.lanes` syntax)
    shape: str | None = None  # the automation part: the lane's name ("absent-present", ...)
    held: list[list[str]] | None = None  # keep rows: per prompt, the other traits held (their stems play)

    @property
    def steered(self) -> bool:
        return self.method not in UNSTEERED

    def ident(self) -> dict[str, Any]:
        """trait, task, method, alpha (None when NaN) and any lane: what names the row in results and caches."""
        out = {
            "trait": self.trait,
            "task": self.task,
            "method": self.method,
            "alpha": None if math.isnan(self.alpha) else self.alpha,
        }
        return {**out, "lane": self.lane} if self.lane is not None else out

    def describe(self) -> str:
        return f"{self.trait} {self.task} {self.method} a={self.alpha:g}"

    def recipe(self, cfg: Config) -> Recipe:
        """The row's recipe: ITI's, the paper's, or the configured SMITIN one (+/- the monitor)."""
        if self.method in ("iti", "lane-iti"):
            return replace(recipe("iti"), heads=cfg.iti_heads)
        if self.method == "smitin-paper":
            return recipe("paper")
        base = replace(recipe(cfg.recipe), edit=cfg.edit or recipe(cfg.recipe).edit)
        return replace(base, monitor=False) if self.method == "no-monitor" else replace(base, monitor=True)

    def steers(self, probes: ProbeSet, cfg: Config) -> list[Steer]:
        """The row's steering (none for the unsteered rows); removal pushes with a negative alpha."""
        if not self.steered:
            return []
        sign = -1.0 if self.task == "removal" else 1.0
        how = replace(self.recipe(cfg), threshold=self.threshold(cfg))
        return [Steer(probes, alpha=sign * self.alpha, lane=self.lane, **how.steer_kwargs())]

    def kept_steers(self, others: dict[str, ProbeSet], cfg: Config) -> list[list[Steer]] | None:
        """Keep rows: per prompt, keep-mode steers (the row's recipe and |alpha|, their own monitor)
        for the other traits that play in it; None for every other row."""
        if self.held is None:
            return None
        how = replace(self.recipe(cfg), threshold=self.threshold(cfg)).steer_kwargs()
        how["monitor"] = True  # keep mode watches what it holds
        return [[Steer(others[t], alpha=abs(self.alpha), keep=True, **how) for t in ts] for ts in self.held]

    def threshold(self, cfg: Config) -> float | str:
        """The monitor's threshold: --threshold if given, else the row's recipe's."""
        return cfg.threshold if cfg.threshold is not None else self.recipe(cfg).threshold

    def options(self, cfg: Config, seed: int) -> GenerationOptions:
        """Generation options of one chunk: the row's recipe sets the schedule."""
        return cfg.options(seed, self.recipe(cfg).every if self.steered else None)


def plan_jobs(
    cfg: Config, trait: str, data: TraitData, root: Path, has_text: bool, notes: list[str]
) -> list[Job]:
    """Rows of one trait: the table at `alpha` plus the alpha sweep (continuation, ITI and SMITIN).

    What cannot run (no prompts, no text processor for the text rows) is skipped and added to `notes`.
    """
    out = []
    for task in cfg.tasks:
        if task not in TASKS:  # the automation part plans its own rows (`automation.plan`)
            continue
        label = 1 if task == "removal" else 0  # removal starts from mixes WITH the trait
        idx = pick_prompts(data.prompts, label, cfg.prompts)
        if not idx:
            notes.append(f"{trait}/{task}: no prompt segments on the evaluation tracks; skipped")
            continue
        if len(set(idx)) < len(idx):
            notes.append(
                f"{trait}/{task}: only {len(set(idx))} distinct prompt segments for {len(idx)} prompts; "
                "repeated ones count as one prompt in the intervals (add songs with --songs)"
            )
        segs = [data.prompts.segments[i] for i in idx]
        styles = [track_meta(root, s.track).get("style", "pop") for s in segs]
        stems = [[Path(p).stem for p in s.sources] for s in segs]
        waves = None if task == "text-to-music" else data.prompts.load(idx)
        others = [t for t in cfg.traits if t != trait]
        held = [sorted(playing(sm, others)) for sm in stems]
        for method in cfg.methods:
            if method in KEEP_METHODS and task == "text-to-music":
                continue  # nothing playing to hold
            if method == "no-monitor" and "iti" in cfg.methods and same_as_iti(cfg):
                if task == cfg.tasks[0]:
                    notes.append(
                        f"{trait}: SMITIN's recipe without its monitor pushes exactly as ITI (same heads, "
                        "direction, schedule and edit); its rows are the ITI rows, not generated twice"
                    )
                continue
            texts = _texts(task, trait, styles, stems, method in TEXT_METHODS)
            if texts and not has_text:
                if method in TEXT_METHODS:
                    notes.append(f"{trait}/{task}/{method}: the model has no text processor; skipped")
                    continue
                texts = None
            alphas = (
                [cfg.alpha]
                if task != "continuation" or method not in SWEEP_METHODS
                else sorted({cfg.alpha, *cfg.alphas})
            )
            for alpha in alphas if method not in UNSTEERED else [float("nan")]:
                out.append(
                    Job(
                        trait=trait,
                        task=task,
                        method=method,
                        alpha=alpha,
                        sweep=bool(alpha == alpha and alpha != cfg.alpha),
                        texts=texts,
                        waves=waves,
                        count=len(idx),
                        example_text=texts[0] if texts else "",
                        segments=list(idx),
                        held=held if method in KEEP_METHODS else None,
                    )
                )
    return out


def same_as_iti(cfg: Config) -> bool:
    """Whether the no-monitor row would push exactly as the ITI row (same heads, direction, schedule
    and edit): then it is the ITI row and is not generated again."""
    base, iti = (
        Job("", "continuation", "no-monitor", 1.0, False, None, None, 0),
        Job("", "continuation", "iti", 1.0, False, None, None, 0),
    )
    a, b = base.recipe(cfg), iti.recipe(cfg)

    def how(r: Recipe) -> dict[str, Any]:  # no monitor: its threshold does nothing
        return {k: v for k, v in r.steer_kwargs().items() if k != "threshold"} | {"every": r.every}

    return how(a) == how(b)


def _texts(
    task: str, trait: str, styles: list[str], stems: list[list[str]], use_text: bool
) -> list[str] | None:
    """The captions of one row (None: no text condition)."""
    pairs = list(zip(styles, stems, strict=True))
    if task == "text-to-music":  # captions of the prompt mixes (without the trait), +/- the trait
        return [caption(st, [*sm, trait] if use_text else sm) for st, sm in pairs]
    if not use_text:
        return None
    if task == "continuation":
        return [caption(st, [*sm, trait]) for st, sm in pairs]
    return [caption(st, [n for n in sm if n != trait], absent=trait) for st, sm in pairs]


@dataclass
class Batch:
    """Generated clips of one row, with what the metrics need."""

    audio: np.ndarray  # [N, S] the new audio only
    prompt: np.ndarray | None  # [N, S'] continuation prompts
    codes: torch.Tensor  # [N, K, T] prompt + new frames
    start: int  # first new frame
    mean_gain: float
    share_applied: float
    prompt_index: np.ndarray  # [N] which of the row's prompts each clip continues or captions
    seeds: np.ndarray  # [N] the generation seed of each clip's chunk


def clip_plan(count: int, reps: int, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Prompt index and seed of each clip of a row: prompts x reps in prompt-major order, chunked by
    `batch`, seed = base + chunk.

    Every row of one trait and task has the same prompts in the same order, so clip i of a
    steered row and clip i of its no-control row share prompt and seed (and their place in the
    batch): that is the pairing of the headline. Stored per clip, so pairs are matched by name.
    """
    i = np.arange(count * reps)
    return i // reps, seed + i // batch


def _continue_batch(
    backbone: Backbone,
    waves: np.ndarray,
    texts: list[str] | None,
    steers: list[Steer],
    options: GenerationOptions,
) -> Result:
    """Continue B different prompts (equal lengths) in one batch."""
    return continue_audio(
        backbone, list(waves), backbone.sample_rate, texts, steer=steers, options=options, progress=False
    )


def generate_row(
    backbone: Backbone, job: Job, steers: list[Steer], cfg: Config, kept: list[list[Steer]] | None = None
) -> Batch:
    """All samples of one row: each prompt x `seeds`, in chunks of `batch` (seed = base + chunk).

    A keep row (`kept`: per prompt, the steers that hold its other traits) gives each prompt its own
    steering, so it runs as requests of mixed batches (`generate_rows`), each clip its own sampling
    stream: it pairs with the no-control row by prompt and rep (its clips carry that row's chunk
    seeds as labels), not by shared sampling noise as the other rows of a run without
    `--batch-rows` do. With `--batch-rows` every row is made the keep row's way."""
    if kept is not None:
        batch = generate_rows(backbone, [job], [steers], cfg, [kept])[0]
        return replace(batch, seeds=clip_plan(job.count, cfg.seeds, cfg.batch, cfg.seed)[1])
    reps = cfg.seeds
    texts = [t for t in job.texts for _ in range(reps)] if job.texts else None
    waves = np.repeat(job.waves, reps, axis=0) if job.waves is not None else None
    n = len(texts) if texts else len(waves) if waves is not None else job.count * reps
    audio, codes, prompts = [], [], []
    gains: list[float] = []
    shares: list[float] = []
    weights: list[int] = []
    start = 0
    for c, i in enumerate(range(0, n, cfg.batch)):
        sl = slice(i, min(n, i + cfg.batch))
        seed = cfg.seed + c
        if waves is not None:
            r = _continue_batch(
                backbone, waves[sl], texts[sl] if texts else None, steers, job.options(cfg, seed)
            )
            p = waves.shape[1]
            start = r.codes.shape[-1] - int(round(cfg.duration * backbone.frame_rate))
            audio.append(r.audio[:, p:])
            prompts.append(r.audio[:, :p])  # the prompt as decoded by the codec: same domain as the rest
        else:
            prompt = texts[sl] if texts else None
            options = replace(job.options(cfg, seed), batch=sl.stop - sl.start)
            r = _generate(backbone, prompt, steer=steers, options=options, progress=False)
            audio.append(r.audio)
        codes.append(r.codes)
        if steers:
            gains.append(r.trace.mean_gain()[steers[0].name])
            shares.append(r.trace.share_applied()[steers[0].name])
            weights.append(sl.stop - sl.start)
    length = min(a.shape[1] for a in audio)
    prompt_index, seeds = clip_plan(job.count, reps, cfg.batch, cfg.seed)
    if len(prompt_index) != n:
        raise ValueError(f"{job.describe()}: {n} clips for {job.count} prompts x {reps} seeds")
    return Batch(
        np.concatenate([a[:, :length] for a in audio]),
        np.concatenate(prompts) if prompts else None,
        torch.cat(codes),
        start,
        float(np.average(gains, weights=weights)) if gains else float("nan"),
        float(np.average(shares, weights=weights)) if shares else float("nan"),
        prompt_index,
        seeds,
    )


def generate_rows(
    backbone: Backbone,
    jobs: Sequence[Job],
    steers: Sequence[list[Steer]],
    cfg: Config,
    kept: Sequence[list[list[Steer]] | None] | None = None,
) -> list[Batch]:
    """Several rows of one trait and task at once (`--batch-rows`): every clip of every row is a
    request of a mixed batch (`smitin.mixed`), `cfg.batch` requests per forward pass.

    Clip i of every row continues (or captions) the same prompt with the same seed, its own
    (base + i): the pairing of the headline, now by each clip's own sampling stream rather than by
    a shared chunk seed and batch place. Rows must share prompts and schedule (`every`). `kept`
    (per row, None or per prompt): steers added to that prompt's requests (keep rows).
    """
    from ..mixed import Request, generate_mixed

    first = jobs[0]
    reps = cfg.seeds
    n = first.count * reps
    prompt_index, _ = clip_plan(first.count, reps, cfg.batch, cfg.seed)
    seeds = cfg.seed + np.arange(n)
    waves = np.repeat(first.waves, reps, axis=0) if first.waves is not None else None
    plan = [
        (
            j,
            i,
            Request(
                job.texts[prompt_index[i]] if job.texts else None,
                [*s, *(k[prompt_index[i]] if k is not None else [])],
                int(seeds[i]),
                waves[i] if waves is not None else None,
            ),
        )  # fmt: skip
        for j, (job, s, k) in enumerate(zip(jobs, steers, kept or [None] * len(jobs), strict=True))
        for i in range(n)
    ]
    results: dict[tuple[int, int], Result] = {}
    options = first.options(cfg, cfg.seed)
    for c in range(0, len(plan), cfg.batch):
        chunk = plan[c : c + cfg.batch]
        for (j, i, _), r in zip(chunk, generate_mixed(backbone, [q for _, _, q in chunk], options=options, progress=False), strict=True):  # fmt: skip
            results[j, i] = r
    out = []
    new = int(round(cfg.duration * backbone.frame_rate))
    for j, (_job, s) in enumerate(zip(jobs, steers, strict=True)):
        rs = [results[j, i] for i in range(n)]
        p = waves.shape[1] if waves is not None else 0
        length = min(r.audio.shape[1] - p for r in rs)
        gains = [r.trace.mean_gain()[s[0].name] for r in rs] if s else []
        shares = [r.trace.share_applied()[s[0].name] for r in rs] if s else []
        out.append(
            Batch(
                np.concatenate([r.audio[:, p : p + length] for r in rs]),
                np.concatenate([r.audio[:, :p] for r in rs]) if waves is not None else None,
                torch.cat([r.codes for r in rs]),
                rs[0].codes.shape[-1] - new,
                float(np.mean(gains)) if gains else float("nan"),
                float(np.mean(shares)) if shares else float("nan"),
                prompt_index,
                seeds,
            )
        )
    return out
