"""What the experiment runs: its settings (`Config`), the quick preset, and its command line.

No torch here: `smitin experiment --help` builds its parser from this module alone. Running
the experiment is `smitin.experiment.command.run`, so that nothing here imports the runner
(which imports this module).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..options import EDITS, GenerationOptions
from ..recipes import DEFAULT_RECIPE, RECIPES, check_threshold, recipe

TASKS = ("continuation", "text-to-music", "removal")
PARTS = (*TASKS, "automation")  # --tasks may also name the automation part (trait lanes), not in the default
METHODS = ("none", "text", "iti", "no-monitor", "smitin", "smitin+text", "smitin-paper", "smitin+keep")
LABELS = {
    "none": "no control",
    "text": "text",
    "iti": "ITI (top-K, no monitor)",
    "no-monitor": "SMITIN's recipe, no monitor",
    "smitin": "SMITIN",
    "smitin+text": "SMITIN + text",
    "smitin-paper": "SMITIN, the paper's recipe",
    "smitin+keep": "SMITIN, holding the prompt's other instruments",
}
KEEP_METHODS = ("smitin+keep",)  # rows that also hold (keep mode) the other traits playing in each prompt
SWEEP_METHODS = (
    "iti",
    "no-monitor",
    "smitin",
    "smitin-paper",
)  # the alpha sweep; no-monitor isolates the monitor
ALIASES = {"soft-no-monitor": "no-monitor"}  # method names of smitin 0.1
REFERENCE_TRAITS = ("drums", "bass", "guitar", "piano")  # full mixes where these play: the FAD reference
SPLIT = (0.5, 0.25)  # shares of tracks for probes and the classifier; the rest is evaluation


@dataclass
class Config:
    """Everything that determines the table (written to config.json beside it)."""

    out: Path = Path("experiment")
    model: str = "bundled"
    device: str = "cpu"
    data: Path | None = None
    # 100 songs split by track give the probes 50: with 27 (smitin 0.2's 50 songs) bass and guitar
    # probes were too weak to steer (median head 0.54-0.58, the monitor stopped at once); docs/results.md
    songs: int = 100
    data_seed: int = 0
    traits: list[str] = field(default_factory=lambda: ["drums", "bass", "guitar", "piano"])
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    prompts: int = 24  # x seeds = 48 pairs per row, the headline's minimum
    seeds: int = 2
    seed: int = 0
    duration: float = 4.0
    prompt_seconds: float = 3.0
    alpha: float = 5.0
    alphas: list[float] = field(default_factory=lambda: [2.0, 5.0, 10.0, 20.0])
    iti_heads: int = 16
    threshold: float | str | None = (
        None  # of the SMITIN rows: None (each recipe's), "paper", "positive", a number
    )
    recipe: str = (
        DEFAULT_RECIPE  # the SMITIN rows' recipe (smitin.recipes); ITI and the paper's rows have theirs
    )
    every: int | None = None  # None: each row's recipe's schedule
    edit: str | None = None  # of the SMITIN rows: None (the recipe's), "shift" or "bounded" (smitin.edits)
    guidance: float = 3.0
    batch: int = 16
    batch_rows: bool = False  # the rows of a trait and task generated together (smitin.mixed)
    per_track: int = 6
    clap: Path | None = None
    threads: int = 1  # on a busy CPU one thread beats two by 5-15x (no spin-waiting); 0 = torch's choice
    quick: bool = False
    progress: bool = True

    def options(self, seed: int, every: int | None = None) -> GenerationOptions:
        """How a row generates (the seed varies by chunk; `every` is its recipe's schedule)."""
        return GenerationOptions(
            duration=self.duration,
            seed=seed,
            guidance_scale=self.guidance,
            every=self.every or every or recipe(self.recipe).every,
        )

    def key(self) -> dict[str, Any]:
        """The settings a cached row depends on."""
        keep = (
            "duration",
            "prompt_seconds",
            "every",
            "guidance",
            "batch",
            "prompts",
            "seeds",
            "seed",
            "recipe",
        )
        return {k: getattr(self, k) for k in keep}


QUICK: dict[str, Any] = dict(
    traits=["drums", "bass"], prompts=3, seeds=2, duration=3.0, alphas=[2.0, 5.0, 10.0], per_track=3, songs=24
)


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
    p.add_argument(
        "--tasks",
        default=",".join(d.tasks),
        help=f"comma-separated from {', '.join(PARTS)} (default: the first three; automation: does a trait "
        "follow a lane, absent then present and present then absent, judged per 1-s window)",
    )
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
        "--recipe",
        choices=tuple(RECIPES),
        default=d.recipe,
        help=f"recipe of the SMITIN rows (default {d.recipe}); the smitin-paper rows always use the paper's",
    )
    p.add_argument(
        "--every",
        type=int,
        default=None,
        help="edit every N steps in all steered rows (default: each row's recipe: 1, the paper's 5)",
    )
    p.add_argument(
        "--edit",
        choices=EDITS,
        default=None,
        help="edit of the SMITIN rows: shift (alpha * sigma along the direction; every recipe's) or bounded "
        "(towards the trait's class-mean reading and no further); default: the recipe's",
    )
    p.add_argument(
        "--threshold",
        type=_threshold,
        default=None,
        help="monitor threshold of the SMITIN rows: a probability in (0, 1), 'paper' (median(acc) - "
        "std(acc)) or 'positive' (what the watched heads read on the class mean); default: each row's "
        "recipe's (smitin's positive, the paper's paper)",
    )
    p.add_argument("--batch", type=int, default=d.batch, help="samples generated at once (default 16)")
    p.add_argument(
        "--batch-rows",
        action="store_true",
        help="generate the rows of a trait and task together, --batch clips per forward pass whatever "
        "their row (smitin.mixed: each clip its own seed, paired across rows by prompt and seed); "
        "faster, other clips than the default's",
    )
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
    tasks, methods = _split(args.tasks), [ALIASES.get(m, m) for m in _split(args.methods)]
    for name, got, allowed in (("task", tasks, PARTS), ("method", methods, METHODS)):
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
        recipe=args.recipe,
        every=args.every,
        threshold=args.threshold,
        edit=args.edit,
        batch=args.batch,
        batch_rows=args.batch_rows,
        clap=args.clap,
        threads=args.threads,
        quick=args.quick,
        progress=not args.quiet,
    )
    return Config(**base)


def _split(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _threshold(text: str) -> float | str | None:
    """argparse type of --threshold: smitin.recipes.check_threshold's values, its message on error."""
    try:
        return check_threshold(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
