"""Does the monitor hold SMITIN back by reading the heads it pushes? (issue 12)

smitin's recipe pushes the 16 most accurate heads and its monitor reads the same 16: the push
itself can make C(t) cross the threshold, so the monitor stops while the music has not changed.
This compares, on an experiment's prepared data, probes and judges (`smitin experiment --out
DIR` run before), paired by prompt and seed in continuation: no control, SMITIN watching the
pushed heads (`watch="best"`, today's), SMITIN watching the 16 best heads it does not push
(`watch="unpushed"`), SMITIN with its threshold at the C its heads read on the positive class
mean (instead of the paper's median - std of accuracies), and ITI (no monitor). Judge B (the CNN) decides presence; differences to no
control with 95% bootstrap intervals over prompts.

    python scripts/watch_unpushed.py --exp /work/exp/a --traits bass,guitar,piano,drums
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

from smitin.experiment import Config
from smitin.experiment.rows import generate_row
from smitin.experiment.runner import Experiment
from smitin.experiment.stats import bootstrap_diff
from smitin.steering import Steer


def config(exp: Path) -> Config:
    saved = json.loads((exp / "config.json").read_text())["config"]
    known = {f.name for f in fields(Config)}
    cfg = Config(**{k: v for k, v in saved.items() if k in known})
    paths = {k: Path(v) for k, v in (("out", saved["out"]), ("data", saved.get("data"))) if v}
    return replace(cfg, **paths, progress=False)


def positive_level(probes, k: int = 16) -> float:
    """C the monitor would read on the positive class mean (median over the k best heads)."""
    top = probes.top(k)
    w, b = probes.weight.float().flatten(0, 1)[top], probes.bias.float().flatten()[top]
    pos = probes.mean_pos.float().flatten(0, 1)[top]
    return float(torch.sigmoid((w * pos).sum(-1) + b).median())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp", type=Path, required=True, help="a finished `smitin experiment` folder")
    ap.add_argument("--traits", default="bass,guitar,piano,drums")
    ap.add_argument("--alpha", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=None, help="JSON of the results (default EXP/watch.json)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = config(args.exp)
    exp = Experiment(cfg)
    results = {}
    for trait in args.traits.split(","):
        exp.prepare_trait(trait)
        jobs = [j for j in exp.jobs(trait) if j.task == "continuation" and not j.sweep]
        none = next(j for j in jobs if j.method == "none")
        smitin = next(j for j in jobs if j.method == "smitin")
        probes = exp.probes[trait]
        arms = {
            "none": (none, []),
            "smitin (watch pushed)": (smitin, [Steer(probes, alpha=args.alpha, watch="best")]),
            "smitin (watch unpushed)": (smitin, [Steer(probes, alpha=args.alpha, watch="unpushed")]),
            "smitin (tau = C at mean pos)": (
                smitin,
                [Steer(probes, alpha=args.alpha, threshold=positive_level(probes))],
            ),
            "iti": (smitin, [Steer(probes, alpha=args.alpha, monitor=False)]),
        }
        present, shares = {}, {}
        for name, (job, steers) in arms.items():
            batch = generate_row(exp.backbone, job, steers, cfg)
            present[name] = exp.cnns[trait].present(batch.audio, exp.sr)[0].astype(float)
            shares[name] = batch.share_applied
            groups = batch.prompt_index
        rows = {}
        for name in arms:
            mean, lo, hi = bootstrap_diff(present[name] - present["none"], groups)
            rows[name] = {
                "presence": float(present[name].mean()),
                "vs_none": [round(100 * mean), round(100 * lo), round(100 * hi)],
                "steps_edited": None if np.isnan(shares[name]) else round(float(shares[name]), 3),
            }
            print(f"{trait:7s} {name:24s} presence {rows[name]['presence']:.0%}  vs none {rows[name]['vs_none']}"
                  f"  edited {rows[name]['steps_edited']}", flush=True)  # fmt: skip
        results[trait] = rows
    out = args.out or args.exp / "watch.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
