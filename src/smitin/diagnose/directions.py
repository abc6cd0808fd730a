"""Is loudness or noisiness part of the push direction? Directions read on real and noisy pairs.

For excerpts with and without the trait (the same window of the same song, as the probes were
fitted on), the heads' activations are read at the last position (as for the probes) for: the
excerpt without the trait, with it, with it but turned down to the level of the excerpt without
it (loudness matched), and without it plus white or pink noise as loud as the trait's stem.
Per pushed head this gives how far each version moves the head along the steering direction
(noise against the real stem: a ratio near 1 means the direction cannot tell noise from the
trait), the cosine between each version's paired direction and the steering one, and across
clips, the correlation of the push direction's reading with loudness and spectral flatness.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..activations import read_heads
from ..experiment.metrics import pearson
from ..probes import ProbeSet, orthogonal_to
from .context import Context
from .signal import add_noise, flatness, rms_db


def head_readings(ctx: Context, audio: np.ndarray, batch: int = 8) -> torch.Tensor:
    """[N, S] clips -> z [N, L, H, D] at the last position (the probes' reading), float32 on CPU."""
    with torch.no_grad():
        out = [
            read_heads(ctx.backbone, audio[i : i + batch])[:, 0].float().cpu()
            for i in range(0, len(audio), batch)
        ]
    return torch.cat(out)


def versions(pos: np.ndarray, neg: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """The excerpt pairs and their controls: loudness-matched positives, noise as loud as the stem."""
    stem_rms = np.sqrt(((pos - neg) ** 2).mean(-1, keepdims=True))
    neg_rms = np.sqrt((neg**2).mean(-1, keepdims=True)) + 1e-9
    pos_rms = np.sqrt((pos**2).mean(-1, keepdims=True)) + 1e-9
    level = stem_rms / neg_rms  # noise as loud as the trait's own stem
    return {
        "with": pos,
        "with, loudness matched": pos * (neg_rms / pos_rms),
        "without + white noise": neg + (add_noise(neg, "white", 1.0, seed) - neg) * level,
        "without + pink noise": neg + (add_noise(neg, "pink", 1.0, seed) - neg) * level,
    }


def analyse(ctx: Context) -> dict[str, Any]:
    pos, neg = ctx.pairs("probe")
    steer = ctx.steer()
    pushed = (steer.head_weights().flatten() > 0).nonzero().flatten()
    base = head_readings(ctx, neg)  # [N, L, H, D]
    out: dict[str, Any] = {"pairs": len(pos), "pushed_heads": len(pushed), "directions": {}}
    clips = {"without": neg, **versions(pos, neg, ctx.settings.seed)}
    z = {"without": base, **{name: head_readings(ctx, a) for name, a in clips.items() if name != "without"}}
    flat = {name: flatness(a, ctx.sr) for name, a in clips.items()}
    loud = {name: rms_db(a) for name, a in clips.items()}
    out["flatness"] = {name: float(f.mean()) for name, f in flat.items()}
    for direction in ("mass_mean", "probe"):
        unit, _sigma = ctx.probes.steering_vectors(direction)
        unit = unit.float()
        moved = {name: ((z[name] - base) * unit).sum(-1).mean(0).flatten()[pushed] for name in clips}
        real = moved["with"]
        cos = {
            name: torch.nn.functional.cosine_similarity(
                (z[name] - base).mean(0).flatten(0, 1)[pushed], unit.flatten(0, 1)[pushed], dim=-1
            )
            for name in clips
            if name != "without"
        }
        reading = {name: (z[name] * unit).sum(-1).flatten(1)[:, pushed].sum(1).numpy() for name in clips}
        every = np.concatenate([reading["without"], reading["with"]])
        out["directions"][direction] = {
            "shift_along_direction": {name: float(moved[name].mean()) for name in clips if name != "without"},
            "shift_vs_real_stem": {
                name: float((moved[name] / real.abs().clamp_min(1e-6)).median())
                for name in clips
                if name not in ("without", "with")
            },
            "cosine_to_direction": {name: float(c.median()) for name, c in cos.items()},
            "correlation_all_clips": {
                "rms_db": pearson(every, np.concatenate([loud["without"], loud["with"]])),
                "flatness": pearson(every, np.concatenate([flat["without"], flat["with"]])),
            },
            "correlation_without_trait": {
                "rms_db": pearson(reading["without"], loud["without"]),
                "flatness": pearson(reading["without"], flat["without"]),
            },
        }
    return out


def denoised(ctx: Context) -> ProbeSet:
    """The trait's probes with the class-mean direction made blind to noise: per head, its
    component along the mean shift that white noise (as loud as the trait's stem, added to the
    excerpts without the trait) causes is removed, and the rest renormalised (sigma kept, so an
    alpha pushes as far). A push along it cannot raise the reading by adding broadband noise, to
    first order; whether it still adds the trait is what the sweep's `direction=denoised` measures.
    """
    n = stem_noise_response(ctx)
    unit, sigma = ctx.probes.steering_vectors("mass_mean")
    d = orthogonal_to(unit.float(), n)
    d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    directions = {**ctx.probes.directions, "mass_mean": (d.to(unit.dtype), sigma)}
    return replace(ctx.probes, directions=directions)


def blind_monitor(ctx: Context) -> ProbeSet:
    """The trait's probes with each probe's weights made blind to noise (their component along the
    heads' mean response to white noise removed; bias and push directions unchanged): a monitor
    reading with them cannot be satisfied by broadband noise, to first order."""
    w = orthogonal_to(ctx.probes.weight.float(), stem_noise_response(ctx))
    return replace(ctx.probes, weight=w.to(ctx.probes.weight.dtype))


def stem_noise_response(ctx: Context) -> torch.Tensor:
    """[L, H, D] unit vectors: per head, the mean shift that white noise as loud as the trait's stem
    (not `activations.noise_response`'s fixed 0.3x RMS: the diagnosis compares it with the stem),
    added to the excerpts without the trait, causes (made once per context)."""
    if "stem_noise_response" not in ctx.derived_tensors:
        pos, neg = ctx.pairs("probe")
        noisy = versions(pos, neg, ctx.settings.seed)["without + white noise"]
        shift = (head_readings(ctx, noisy) - head_readings(ctx, neg)).mean(0)  # [L, H, D]
        ctx.derived_tensors["stem_noise_response"] = shift / shift.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return ctx.derived_tensors["stem_noise_response"]
