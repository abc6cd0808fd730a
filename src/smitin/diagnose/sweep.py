"""Push strength, place and kind, and sampling: continuations judged against their unsteered pair.

Every variant (`variants`) continues the same trait-free prompts with the same seeds as its
unsteered pair (the same sampling settings, no steering), so each clip has a partner that
differs only by the push. Per variant: the independent judge's presence (paired difference with a
95% interval over prompts), the change in spectral flatness (noisiness) and loudness, and the
share of steps the monitor let the edit through; what is kept of the music (`experiment.keep`):
harmonic continuity with the prompt and pulse clarity, paired the same way. With other traits watched (`--keep`), each one's
judge too: its retention (of the pairs where the unsteered clip has it, the share where the
steered clip still does) and its paired change in judge probability, with or without holding it;
a variant with keep=1 holds, in each prompt, the watched traits whose stems are mixed into it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..experiment.keep import harmonic_continuity, pulse_clarity
from ..experiment.stats import bootstrap_diff
from ..mixed import Request, generate_mixed
from ..options import GenerationOptions
from ..steering import Steer
from .context import Context
from .directions import blind_monitor, denoised
from .signal import flatness, rms_db
from .variants import Variant

MEASURES = ("present", "p", "flatness", "continuity", "pulse", "rms_db")  # paired per variant


@dataclass
class LayerSteer(Steer):
    """A Steer whose pushed heads are the best ones inside `layers` only (the monitor is unchanged)."""

    layers: tuple[int, ...] = ()

    def head_weights(self) -> torch.Tensor:
        if not self.layers:
            return super().head_weights()
        acc = self.probes.accuracy.float()
        inside = torch.zeros_like(acc, dtype=torch.bool)
        inside[[layer for layer in self.layers if layer < acc.shape[0]]] = True
        if self.heads == "soft":
            return super().head_weights() * inside
        k = min(int(self.heads), int(inside.sum()))
        w = torch.zeros(acc.numel())
        w[torch.topk(acc.masked_fill(~inside, float("-inf")).flatten(), k).indices] = 1.0
        return w.reshape(acc.shape)


def _steer(ctx: Context, variant: Variant) -> Steer:
    """The variant's push: smitin's recipe at --alpha with its keys; `direction=denoised` and
    `blind=1` use probes made noise-blind (`directions.denoised`, `directions.blind_monitor`)."""
    how = {"alpha": ctx.settings.alpha, **(variant.steer or {})}
    blind = how.pop("blind", False)
    probes = ctx.probes
    if blind:
        if "blind" not in ctx.derived:
            ctx.derived["blind"] = blind_monitor(ctx)
        probes = ctx.derived["blind"]
    if how.get("direction") == "denoised" and "denoised" not in probes.directions:  # an older file
        if "denoised" not in ctx.derived:
            ctx.derived["denoised"] = denoised(ctx)
        d = ctx.derived["denoised"].directions["mass_mean"]
        probes, how["direction"] = (
            replace(probes, directions={**probes.directions, "mass_mean": d}),
            "mass_mean",
        )
    return LayerSteer(probes, **how, layers=variant.layers)


def _clips(
    ctx: Context, variant: Variant, prompts: np.ndarray, held: list[set[str]]
) -> dict[str, np.ndarray]:
    """Generate a variant over every prompt and seed: audio [N, S], prompt (group), edit share, and
    each clip's prompt [N, S'] (what harmonic continuity compares it with).

    One mixed batch per seed (`smitin.mixed`: each prompt its own steers and its own seed), so a
    prompt holds only the watched traits it has (`held[i]`), and a clip depends only on its prompt,
    seed and steering, not on the other prompts of the batch.
    """
    s = ctx.settings
    audio, groups, applied = [], [], []
    options = GenerationOptions(
        duration=s.duration, every=variant.options.get("every", 1), rows=variant.options.get("rows", "both")
    )
    for seed in range(s.seed, s.seed + s.seeds):
        requests = []
        for i, wave in enumerate(prompts):
            steers: list[Steer] = []
            if variant.steer is not None:
                steers.append(_steer(ctx, variant))
                if variant.hold:  # hold the watched traits this prompt has, as hard and as the push
                    how = {
                        "alpha": abs(variant.steer.get("alpha", s.alpha)),
                        "edit": variant.steer.get("edit", "shift"),
                    }
                    steers += [Steer(p, keep=True, **how) for t, p in ctx.kept.items() if t in held[i]]
            requests.append(Request(steer=steers, seed=seed, audio=wave))
        results = generate_mixed(ctx.backbone, requests, options=options, progress=False, **variant.sampling)
        audio += [r.new_audio[0] for r in results]
        groups += list(range(len(prompts)))
        applied += [
            float(r.trace.applied[:, 0, 0].float().mean()) if r.trace.traits else 0.0 for r in results
        ]
    groups_a = np.asarray(groups)
    return {
        "audio": np.stack(audio),
        "group": groups_a,
        "applied": np.asarray(applied),
        "prompt": prompts[groups_a],
    }


def _measure(ctx: Context, clips: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    present, p = ctx.judge(clips["audio"])
    kept = {}
    for trait in ctx.kept:  # the other traits, read by their own judges
        there, q = ctx.judge(clips["audio"], trait)
        kept[f"{trait}:present"], kept[f"{trait}:p"] = there.astype(float), q
    return {
        **kept,
        "present": present.astype(float),
        "p": p,
        "flatness": flatness(clips["audio"], ctx.sr),
        "continuity": harmonic_continuity(clips["prompt"], clips["audio"], ctx.sr),
        "pulse": pulse_clarity(clips["audio"], ctx.sr),
        "rms_db": rms_db(clips["audio"]),
        "applied": clips["applied"],
        "group": clips["group"],
    }


def _paired(steered: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(steered["present"])}
    for key in MEASURES:
        diff, lo, hi = bootstrap_diff(steered[key] - base[key], steered["group"])
        out[key] = {
            "steered": float(steered[key].mean()),
            "none": float(base[key].mean()),
            "diff": diff,
            "low": lo,
            "high": hi,
        }
    out["applied"] = float(steered["applied"].mean())
    out["kept"] = {}
    for key in (k for k in steered if k.endswith(":present")):
        trait = key.partition(":")[0]
        was = base[key] > 0  # pairs where the unsteered clip has it
        diff, lo, hi = bootstrap_diff(steered[f"{trait}:p"] - base[f"{trait}:p"], steered["group"])
        out["kept"][trait] = {
            "present_unsteered": int(was.sum()),
            "retention": float(steered[key][was].mean()) if was.any() else float("nan"),
            "p": {"diff": diff, "low": lo, "high": hi},
        }
    return out


def analyse(ctx: Context, variants: list[Variant]) -> dict[str, Any]:
    """Every variant against its unsteered pair (generated once per sampling setting)."""
    prompts, idx = ctx.prompts()
    held = ctx.prompt_traits(idx)
    bases: dict[str, dict[str, np.ndarray]] = {}
    rows: dict[str, Any] = {}
    for variant in variants:
        pair = variant.unsteered()
        if pair.name not in bases:
            bases[pair.name] = _measure(ctx, _clips(ctx, pair, prompts, held))
        row = _paired(_measure(ctx, _clips(ctx, variant, prompts, held)), bases[pair.name])
        row["settings"] = {
            "keep_others": variant.hold,
            "steer": variant.steer,
            "layers": list(variant.layers),
            **variant.options,
            **variant.sampling,
        }
        rows[variant.name] = row
        if ctx.settings.progress:
            print(
                f"  {variant.name}: presence {row['present']['diff']:+.2f} [{row['present']['low']:+.2f}, "
                f"{row['present']['high']:+.2f}], flatness {row['flatness']['diff']:+.3f}, edits {row['applied']:.0%}",
                flush=True,
            )
    nones = {name: {k: float(v.mean()) for k, v in b.items() if k != "group"} for name, b in bases.items()}
    has = {t: sum(t in h for h in held) for t in ctx.kept}
    return {
        "prompts": len(prompts),
        "seeds": ctx.settings.seeds,
        "unsteered": nones,
        "prompt": {  # the prompts themselves: what the continuations had to keep
            "pulse": float(pulse_clarity(prompts, ctx.sr).mean()),
            "flatness": float(flatness(prompts, ctx.sr).mean()),
        },
        "rows": rows,
        "prompts_with": has,
    }


def frontier(res: dict[str, Any], trait: str) -> list[dict[str, Any]]:
    """One point per variant for `experiment.plots.plot_frontier`: presence gain (points) against the
    mean retention of the watched other traits, and the paired continuity and flatness changes."""
    out = []
    for name, r in res["rows"].items():
        kept = [k["retention"] for k in r["kept"].values() if k["present_unsteered"] > 0]
        out.append(
            {
                "trait": trait,
                "method": name,
                "alpha": None,
                "presence": 100 * r["present"]["diff"],
                "retention": float(np.mean(kept)) if kept else float("nan"),
                "continuity": r["continuity"]["diff"],
                "flatness": r["flatness"]["diff"],
            }
        )
    return out
