"""The experiment's figures: success against FAD per method and task, the alpha sweep, and the
frontier of presence against keeping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plots import plt, save
from .config import LABELS, METHODS, SWEEP_METHODS, Config
from .report import Row, column_mean


def plot_results(cfg: Config, rows: list[Row]) -> list[Path]:
    """Success vs FAD per method and task; success and FAD against alpha."""
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
                x = column_mean(rs, "fad")
                ax.scatter(x, column_mean(rs, "success_clf"), color=colors[m], marker="o", label=LABELS[m])
                ax.scatter(
                    x, column_mean(rs, "success_probe"), color=colors[m], marker="^", facecolors="none"
                )
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
        for m, color in (
            ("iti", "tab:red"),
            ("no-monitor", "tab:gray"),
            ("smitin", "tab:blue"),
            ("smitin-paper", "tab:green"),
        ):
            alphas = sorted({r["alpha"] for r in sweep if r["method"] == m})
            by = [[r for r in sweep if r["method"] == m and r["alpha"] == a] for a in alphas]
            a1.plot(
                alphas,
                [column_mean(b, "success_clf") for b in by],
                "-o",
                color=color,
                label=f"{LABELS[m]}, classifier",
            )
            a1.plot(
                alphas,
                [column_mean(b, "success_probe") for b in by],
                "--^",
                color=color,
                label=f"{LABELS[m]}, probes",
            )
            a2.plot(alphas, [column_mean(b, "fad") for b in by], "-o", color=color, label=LABELS[m])
        a1.set_xlabel("alpha")
        a1.set_ylabel("success rate (continuation)")
        a1.set_ylim(-0.05, 1.05)
        a1.legend(fontsize=7)
        a2.set_xlabel("alpha")
        a2.set_ylabel("FAD (log-mel)")
        a2.legend(fontsize=7)
        out.append(save(fig, cfg.out / "plots" / "alpha_sweep.png"))
    return out


FRONTIER_PANELS = (
    ("retention", "other instruments kept (share of pairs)", (-0.05, 1.05)),
    ("continuity", "harmonic continuity change (paired)", None),
    ("flatness", "flatness change (paired; up = noisier)", None),
)


def plot_frontier(points: list[dict[str, Any]], path: Path, title: str = "continuation") -> Path:
    """Presence against keeping, one point per method and alpha (and the stem reference, a star):
    `keeping.frontier_points`'s dicts. A recipe worth having sits right (adds) and, per panel, high
    (keeps the others and the harmony) or low (no noisier than the stem)."""
    from .keeping import STEM, method_label

    fig, axes = plt.subplots(1, len(FRONTIER_PANELS), figsize=(4.2 * len(FRONTIER_PANELS), 3.8))
    methods = list(dict.fromkeys(p["method"] for p in points))
    many = len(methods) > 8  # e.g. `smitin diagnose`'s push variants
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {m: cycle[i % len(cycle)] for i, m in enumerate(methods)}
    markers = dict(zip(dict.fromkeys(p["trait"] for p in points), "osD^vP", strict=False))
    for ax, (key, label, ylim) in zip(axes, FRONTIER_PANELS, strict=True):
        for m in methods:
            for p in (p for p in points if p["method"] == m):
                star = m == STEM
                ax.scatter(
                    p["presence"],
                    p[key],
                    color="k" if star else colors[m],
                    marker="*" if star else markers[p["trait"]],
                    s=120 if star else 30,
                    label=f"{method_label(m)}" if p is next(q for q in points if q["method"] == m) else None,
                )
                if many and not star:  # too many for a legend: each point says its name
                    ax.annotate(method_label(m), (p["presence"], p[key]), fontsize=5, alpha=0.8)
                elif p["alpha"] is not None and not star:
                    ax.annotate(f"{p['alpha']:g}", (p["presence"], p[key]), fontsize=6, alpha=0.7)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.set_xlabel("presence gain, judge B (points, paired)")
        ax.set_ylabel(label)
        if ylim:
            ax.set_ylim(*ylim)
    if not many:
        axes[0].legend(fontsize=6, loc="best")
    traits = ", ".join(f"{t} {mk}" for t, mk in markers.items())
    fig.suptitle(f"{title}: presence vs keeping (markers: {traits}; numbers: alpha)", fontsize=9)
    return save(fig, path)
