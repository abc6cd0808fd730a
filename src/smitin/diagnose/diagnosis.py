"""`smitin diagnose` end to end: the shared context, each analysis asked for, JSON and markdown."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from ..backbone import Backbone
from ..files import atomic
from ..version import __version__
from . import causal, directions, monitor, summary, sweep
from .context import Context
from .settings import Settings
from .variants import parse_variant, push_variants, sampling_variants


def diagnose(
    settings: Settings,
    command: str | None = None,
    only_variants: bool = False,
    backbone: Backbone | None = None,
) -> dict[str, Any]:
    """Run the analyses of `settings` on one trait; writes OUT/diagnosis.json and OUT/summary.md.

    `backbone`: a loaded model instead of `settings.model` (tests, notebooks)."""
    t0 = time.time()
    settings.out.mkdir(parents=True, exist_ok=True)
    ctx = Context(settings, backbone)
    acc = ctx.probes.accuracy
    results: dict[str, Any] = {
        "smitin": __version__,
        "command": command,
        "settings": {k: str(v) if k in ("out", "data", "probes") else v for k, v in asdict(settings).items()},
        "probes": {
            "best": float(acc.max()),
            "median": float(acc.median()),
            "threshold_paper": ctx.probes.threshold(),
        },
        "judge": dict(ctx.cnn.accuracy),
    }
    steps = {
        "directions": lambda: directions.analyse(ctx),
        "monitor": lambda: monitor.analyse(ctx),
        "causal": lambda: causal.analyse(ctx),
        "push": lambda: sweep.analyse(
            ctx,
            (
                []
                if only_variants
                else push_variants(settings.alpha, ctx.backbone.layout.layers, bool(ctx.kept))
            )
            + [parse_variant(v) for v in settings.variants],
        ),
        "sampling": lambda: sweep.analyse(ctx, sampling_variants()),
    }
    for name in settings.analyses:
        if settings.progress:
            print(f"[{time.time() - t0:6.0f}s] {name} ...", flush=True)
        results[name] = steps[name]()
        if name == "push":  # presence against keeping, one point per variant
            from ..experiment.plots import plot_frontier

            plot_frontier(
                sweep.frontier(results[name], settings.trait),
                settings.out / "frontier.png",
                title=f"{settings.trait}: push variants",
            )
        results["seconds"] = round(time.time() - t0, 1)
        _write(settings, results)
    return results


def _write(settings: Settings, results: dict[str, Any]) -> None:
    results["markdown"] = summary.markdown(results)
    with atomic(settings.out / "diagnosis.json") as tmp:
        tmp.write_text(
            json.dumps({k: v for k, v in results.items() if k != "markdown"}, indent=1, default=float)
        )
    with atomic(settings.out / "summary.md") as tmp:
        tmp.write_text(results["markdown"] + "\n")
