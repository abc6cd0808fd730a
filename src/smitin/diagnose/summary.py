"""The diagnosis as a person reads it: one markdown table per analysis, from the JSON results."""

from __future__ import annotations

from typing import Any


def _f(x: Any, fmt: str = "+.2f") -> str:
    return "n/a" if x is None or x != x else format(x, fmt)


def _interval(d: dict[str, float], fmt: str = "+.2f") -> str:
    return f"{_f(d['diff'], fmt)} [{_f(d['low'], fmt)}, {_f(d['high'], fmt)}]"


def directions(res: dict[str, Any]) -> list[str]:
    out = [
        "## Directions: is loudness or noise part of the push?",
        "",
        f"{res['pairs']} excerpt pairs (with / without the trait, same window), the {res['pushed_heads']} pushed "
        "heads. *shift*: mean move of a pushed head along the direction, from the excerpt without the trait; "
        "*vs stem*: median over heads of that move relative to the real stem's; *cosine*: median cosine "
        "between the version's paired difference and the direction.",
        "",
        "| direction | version | shift | vs stem | cosine |",
        "|---|---|---|---|---|",
    ]
    for direction, d in res["directions"].items():
        for name, shift in d["shift_along_direction"].items():
            ratio = d["shift_vs_real_stem"].get(name)
            out.append(
                f"| {direction} | {name} | {shift:+.3f} | {_f(ratio) if ratio is not None else '1 (itself)'} | "
                f"{d['cosine_to_direction'][name]:+.2f} |"
            )
    out += [
        "",
        "Correlation of the push direction's reading (summed over pushed heads) with the clip's level:",
        "",
    ]
    out += ["| direction | clips | RMS (dB) | spectral flatness |", "|---|---|---|---|"]
    for direction, d in res["directions"].items():
        for label, key in (
            ("with and without", "correlation_all_clips"),
            ("without only", "correlation_without_trait"),
        ):
            c = d[key]
            out.append(f"| {direction} | {label} | {_f(c['rms_db'])} | {_f(c['flatness'])} |")
    flat = ", ".join(f"{k} {v:.3f}" for k, v in res["flatness"].items())
    return [*out, "", f"Spectral flatness of the versions: {flat}.", ""]


def monitor(res: dict[str, Any]) -> list[str]:
    tau = ", ".join(f"{k} {v:.3f}" for k, v in res["tau"].items())
    out = [
        "## The monitor: does it read noise as the trait?",
        "",
        f"{res['clips']} clips of the evaluation tracks. C: the monitor's reading (median probe probability "
        f"of the 16 best heads, averaged after 1 s); tau: {tau}. Judge: the independent CNN, through the codec.",
        "",
        "| clips | C | C >= positive tau | C >= paper tau | judge: present | flatness |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in res["rows"].items():
        out.append(
            f"| {name} | {r['C_mean']:.3f} | {r['C_at_or_above_positive_tau']:.0%} | "
            f"{r['C_at_or_above_paper_tau']:.0%} | {r['judge_present']:.0%} | {r['flatness']:.3f} |"
        )
    return [*out, ""]


def causal(res: dict[str, Any]) -> list[str]:
    out = [
        "## Where is the lever? Teacher-forced effects of one-head and one-layer edits",
        "",
        f"{res['contexts']} trait-free contexts; alpha {res['alpha']:g}; trait codes per codebook "
        f"{res['trait_codes_per_codebook']}. The metric (log-odds of next-token mass on trait codes) tells "
        f"contexts with the trait from those without at AUC {_f(res['metric_auc_with_vs_without'], '.2f')}.",
        "",
        "| direction | accuracy vs effect (Spearman) | top-16 overlap (chance) | best heads by effect (layer, head) |",
        "|---|---|---|---|",
    ]
    for direction, d in res["directions"].items():
        best = ", ".join(f"({a},{b})" for a, b in d["best_heads_by_effect"][:6])
        out.append(
            f"| {direction} | {_f(d['spearman_accuracy_vs_effect'])} | {d['top16_overlap_accuracy_vs_effect']} "
            f"({d['top16_overlap_by_chance']:.1f}) | {best} |"
        )
    out += ["", "Per layer, all heads pushed (change of trait log-odds; KL in nats per token):", ""]
    names = list(res["directions"])
    out += ["| layer | " + " | ".join(f"{n} d log-odds | {n} KL" for n in names) + " |"]
    out += ["|---|" + "---|---|" * len(names)]
    for layer in range(len(res["directions"][names[0]]["per_layer"])):
        cells = [
            f"{res['directions'][n]['per_layer'][layer]['d_logodds']:+.3f} | {res['directions'][n]['per_layer'][layer]['kl']:.3f}"
            for n in names
        ]
        out.append(f"| {layer} | " + " | ".join(cells) + " |")
    return [*out, ""]


def sweep(title: str, res: dict[str, Any]) -> list[str]:
    rows = list(res["rows"].values())
    kept = list(rows[0].get("kept", {})) if rows else []
    out = [
        f"## {title}",
        "",
        f"{res['prompts']} trait-free prompts x {res['seeds']} seeds, each variant against the unsteered clip of "
        "the same prompt, seed and sampling. Differences are paired means with a 95% bootstrap interval over "
        "prompts; flatness rises as the sound turns into noise."
        + (
            " *kept*: of the pairs where the unsteered clip has that trait (by its judge), the share where the "
            "steered clip still has it; *keep others* variants also hold them (keep mode)."
            if kept
            else ""
        ),
        "",
        "| variant | presence (judge) | judge p | flatness | harmonic continuity | pulse clarity | RMS dB "
        "| edits applied |" + "".join(f" {t} kept | {t} p |" for t in kept),
        "|---|---|---|---|---|---|---|---|" + "---|---|" * len(kept),
    ]
    for name, r in res["rows"].items():
        cells = "".join(
            f" {_f(k['retention'], '.0%')} of {k['present_unsteered']} | {_interval(k['p'])} |"
            for k in (r["kept"][t] for t in kept)
        )
        out.append(
            f"| {name} | {_interval(r['present'])} | {_interval(r['p'])} | {_interval(r['flatness'], '+.3f')} | "
            f"{_measure(r, 'continuity')} | {_measure(r, 'pulse')} | "
            f"{_interval(r['rms_db'], '+.1f')} | {r['applied']:.0%} |" + cells
        )
    if res.get("prompts_with"):
        out += [
            "",
            "Prompts holding each watched trait (from their stems): "
            + ", ".join(f"{t} {n} of {res['prompts']}" for t, n in res["prompts_with"].items())
            + ".",
        ]
    base = "; ".join(
        f"{name}: presence {b['present']:.0%}, flatness {b['flatness']:.3f}"
        + (f", continuity {b['continuity']:.2f}, pulse {b['pulse']:.2f}" if "pulse" in b else "")
        for name, b in res["unsteered"].items()
    )
    prompt = res.get("prompt")
    given = f" Prompts: pulse {prompt['pulse']:.2f}, flatness {prompt['flatness']:.3f}." if prompt else ""
    return [*out, "", f"Unsteered: {base}.{given}", ""]


def _measure(row: dict[str, Any], key: str) -> str:
    """A paired keep measure's cell ('-' in diagnoses written before it was measured)."""
    return _interval(row[key], "+.3f") if key in row else "-"


def markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        f"# smitin diagnose: {s['trait']} on {s['model']}",
        "",
        f"Command: `{results.get('command') or 'smitin diagnose'}`",
        "",
        f"Probes: best head {results['probes']['best']:.3f}, median {results['probes']['median']:.3f}; judge "
        f"(CNN) AUC {_f(results['judge'].get('auc_resynthesised'), '.3f')} on held-out songs through the codec.",
        "",
    ]
    if "directions" in results:
        lines += directions(results["directions"])
    if "monitor" in results:
        lines += monitor(results["monitor"])
    if "causal" in results:
        lines += causal(results["causal"])
    if "push" in results:
        lines += sweep("Push: how hard, how many heads, where, and how", results["push"])
    if "sampling" in results:
        lines += sweep("Sampling: temperature and top-k", results["sampling"])
    return "\n".join(lines)
