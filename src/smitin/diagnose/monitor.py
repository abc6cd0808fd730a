"""Does the monitor read noise as the trait? Probe readings on clips with noise added.

Clips without the trait (evaluation tracks) get white or pink noise at several levels relative
to their own loudness; noise alone stands in for "the music turned into noise". Each version is
read by the monitor's heads (C averaged over the clip after a second of context, as
`smitin.experiment.judges.ProbeDetector` reads generated audio) and, through the codec, by the
independent judge. A monitor that reads noisy clips as the trait stops pushing once the music
has turned into noise, and keeps pushing where the trait really is missing only by chance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..experiment.judges import ProbeDetector
from .context import Context
from .signal import NOISES, add_noise, flatness, noise


def analyse(ctx: Context) -> dict[str, Any]:
    pos, neg = ctx.pairs("eval")
    detector = ProbeDetector(ctx.backbone, ctx.probes)
    taus = {"positive": ctx.probes.class_reading(ctx.probes.top(16)), "paper": ctx.probes.threshold()}
    clips: dict[str, np.ndarray] = {"without": neg, "with": pos}
    for kind in NOISES:
        for level in ctx.settings.noise_levels:
            clips[f"without + {kind} noise x{level:g}"] = add_noise(neg, kind, level, ctx.settings.seed)
        rms = np.sqrt((neg**2).mean(-1, keepdims=True))
        clips[f"{kind} noise alone"] = noise(kind, neg.shape, ctx.settings.seed) * rms
    rows = {}
    for name, audio in clips.items():
        c = detector.scores(audio, ctx.sr)
        present, p = ctx.judge(ctx.exp.resynth(audio))
        rows[name] = {
            "C_mean": float(c.mean()),
            **{f"C_at_or_above_{k}_tau": float((c >= t).mean()) for k, t in taus.items()},
            "judge_present": float(present.mean()),
            "judge_p_mean": float(p.mean()),
            "flatness": float(flatness(audio, ctx.sr).mean()),
        }
    return {"clips": len(neg), "tau": taus, "rows": rows}
