"""`smitin experiment`'s handler: settings from the command line, the run, the printed summary.

Apart from `config` so that the settings never import the runner (which imports them): the
package has no import circle, and `smitin experiment --help` still loads no torch (the runner
is imported only when the experiment starts).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from .config import config_from_args


def run(args: argparse.Namespace) -> int:
    from .runner import run_experiment

    cfg = config_from_args(args)
    command = "smitin " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    results = run_experiment(cfg, command=command)
    print(results["markdown"])
    print(f"wrote {cfg.out / 'results.md'}, {cfg.out / 'results.csv'} and plots in {cfg.out / 'plots'}")
    return 0
