"""`smitin experiment`: the paper's experiment table (success, FAD, similarity per method), in one command.

Modules, in the order data flows: `config` (settings and the command line; `command` runs it), `split` (songs split
by track, prompts, captions), `rows` (what each row runs and its generation), `features`,
`metrics`, `judges` and `cnn` (what the judges hear and decide, quality and coherence numbers),
`noise` (noise that judges must not take for the trait: training augmentation and the check),
`keep` (what is kept of the music: harmonic continuity, pulse, tempo, flatness), `runner` (the
experiment: judges per trait, rows, caches), `stats`, `headline` and `keeping` (paired
differences to no control, intervals, tests: presence, and what is kept), `report` (tables,
results.md, CSV) and `plots`.

Only `config` and `command` are imported eagerly, so `smitin experiment --help` loads no torch; every other name
here is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .command import run
from .config import METHODS, QUICK, TASKS, Config, add_arguments, config_from_args

if TYPE_CHECKING:
    from .cnn import CNNJudge
    from .features import clip_features, window_embeddings
    from .headline import headline
    from .judges import ClapJudge, ClassifierJudge, ProbeDetector, fit_classifier, optional_judges
    from .keep import clip_measures, flatness, harmonic_continuity, pulse_clarity, rhythm
    from .keeping import keep_table, keeping
    from .metrics import auc, fad, frechet_distance, pearson, token_nll
    from .noise import add_noise, augment, false_positives, judge_noise_report
    from .report import markdown
    from .rows import Batch, Job, generate_row
    from .runner import Experiment, Results, run_experiment
    from .split import TraitData, pick_prompts, prepare_data, split_tracks
    from .stats import bootstrap_diff, paired, sign_test, youden_threshold

_LAZY = {
    "CNNJudge": "cnn",
    "headline": "headline",
    "bootstrap_diff": "stats",
    "paired": "stats",
    "sign_test": "stats",
    "youden_threshold": "stats",
    "clip_features": "features",
    "window_embeddings": "features",
    "ClapJudge": "judges",
    "ClassifierJudge": "judges",
    "ProbeDetector": "judges",
    "fit_classifier": "judges",
    "optional_judges": "judges",
    "clip_measures": "keep",
    "flatness": "keep",
    "harmonic_continuity": "keep",
    "pulse_clarity": "keep",
    "rhythm": "keep",
    "keep_table": "keeping",
    "keeping": "keeping",
    "add_noise": "noise",
    "augment": "noise",
    "false_positives": "noise",
    "judge_noise_report": "noise",
    "auc": "metrics",
    "fad": "metrics",
    "frechet_distance": "metrics",
    "pearson": "metrics",
    "token_nll": "metrics",
    "markdown": "report",
    "Batch": "rows",
    "Job": "rows",
    "generate_row": "rows",
    "Experiment": "runner",
    "Results": "runner",
    "run_experiment": "runner",
    "TraitData": "split",
    "pick_prompts": "split",
    "prepare_data": "split",
    "split_tracks": "split",
}

__all__ = [
    "METHODS",
    "QUICK",
    "TASKS",
    "Config",
    "add_arguments",
    "config_from_args",
    "run",
    "clip_features",
    "CNNJudge",
    "headline",
    "bootstrap_diff",
    "paired",
    "sign_test",
    "youden_threshold",
    "window_embeddings",
    "ClapJudge",
    "ClassifierJudge",
    "ProbeDetector",
    "fit_classifier",
    "optional_judges",
    "clip_measures",
    "flatness",
    "harmonic_continuity",
    "pulse_clarity",
    "rhythm",
    "keep_table",
    "keeping",
    "add_noise",
    "augment",
    "false_positives",
    "judge_noise_report",
    "auc",
    "fad",
    "frechet_distance",
    "pearson",
    "token_nll",
    "markdown",
    "Batch",
    "Job",
    "generate_row",
    "Experiment",
    "Results",
    "run_experiment",
    "TraitData",
    "pick_prompts",
    "prepare_data",
    "split_tracks",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
