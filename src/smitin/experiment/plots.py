"""The experiment's figures: success against FAD per method and task, and the alpha sweep."""

from __future__ import annotations

from pathlib import Path

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
