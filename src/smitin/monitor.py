"""Self-monitoring: how strongly the model's own heads already express each trait.

C(t) is the median probe probability over a trait's best heads; the intervention is switched on
while C (or 1 - C when removing the trait) is below the threshold tau. These functions are pure
tensor math on the device: the generation loop never waits for the host to decide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .options import GAINS

__all__ = ["GAINS", "WANT_WORDS", "Trace", "confidence", "next_gain"]

WANT_WORDS = {1: "add", -1: "remove", 0: "free", 2: "keep"}  # a trace's `want` codes (`lanes.WISH`)


def confidence(probs: torch.Tensor) -> torch.Tensor:
    """C: the median of probe probabilities over the watched heads (last axis); NaN slots are ignored."""
    return probs.nanmedian(dim=-1).values


def next_gain(
    c: torch.Tensor, tau: torch.Tensor, remove: torch.Tensor, active: torch.Tensor, gain: str = "switch"
) -> torch.Tensor:
    """Next step's gain g in [0, 1] per row and trait, from C [B, T].

    `remove` [T] bool monitors 1 - C instead of C (the trait wanted absent: a negative alpha, or
    the step's row of a lane); `active` [T] bool: False means monitor off (plain ITI, g = 1). "switch" is the paper's on/off; "ramp" fades from 1 at C = 0 to 0 at tau.
    """
    level = torch.where(remove, 1 - c, c)
    if gain == "switch":
        g = (level < tau).to(c.dtype)
    elif gain == "ramp":
        g = (1 - level / tau).clamp(0, 1)
    else:
        raise ValueError(f"gain must be one of {GAINS}, not {gain!r}")
    return torch.where(active, g, torch.ones_like(g))


@dataclass
class Trace:
    """What the probes read and what the steering did, step by step (a user-facing output).

    c, g: [steps, samples, traits]; edited: [steps] whether the schedule named the step; want:
    [steps, traits] what each step wanted of each trait, +1 add, -1 remove, 0 free, 2 keep (a
    lane's wish, or the trait's own behaviour without one; None in traces made before lanes).
    """

    traits: list[str]
    frame_rate: float
    c: torch.Tensor
    g: torch.Tensor
    edited: torch.Tensor
    settings: dict = field(default_factory=dict)
    want: torch.Tensor | None = None

    def wanted(self, trait: str | int) -> list[str]:
        """Per step: "add", "remove", "free" or "keep" for one trait (by name or index); [] without a record."""
        i = trait if isinstance(trait, int) else self.traits.index(trait)
        if self.want is None:
            return []
        return [WANT_WORDS[int(v)] for v in self.want[:, i].tolist()]

    def select(self, sample: int, traits: list[int]) -> Trace:
        """The trace of one sample and some of the traits (one request of a mixed batch)."""
        settings = dict(self.settings)
        if "traits" in settings:
            settings["traits"] = [settings["traits"][i] for i in traits]
        idx = torch.tensor(traits, dtype=torch.long)
        return Trace(
            traits=[self.traits[i] for i in traits],
            frame_rate=self.frame_rate,
            c=self.c[:, sample : sample + 1].index_select(2, idx) if self.c.numel() else self.c[:, :1, :0],
            g=self.g[:, sample : sample + 1].index_select(2, idx) if self.g.numel() else self.g[:, :1, :0],
            edited=self.edited.clone(),
            settings=settings,
            want=self.want.index_select(1, idx) if self.want is not None else None,
        )

    @property
    def applied(self) -> torch.Tensor:
        """[steps, samples, traits]: the edit was made (scheduled and gain > 0)."""
        return self.edited[:, None, None] & (self.g > 0)

    def share_applied(self) -> dict[str, float]:
        """Per trait: share of all (step, sample) pairs where the edit was made."""
        return {t: float(self.applied[..., i].float().mean()) for i, t in enumerate(self.traits)}

    def share_scheduled(self) -> float:
        """Share of steps the schedule named (1 with every=1, 0.2 with every=5)."""
        return float(self.edited.float().mean()) if len(self.edited) else 0.0

    def share_let_through(self) -> dict[str, float]:
        """Per trait: of the scheduled steps, the share the monitor let through (1 for plain ITI)."""
        n = int(self.edited.sum()) * max(1, self.g.shape[1])
        return {t: float(self.applied[..., i].sum()) / n if n else 0.0 for i, t in enumerate(self.traits)}

    def describe(self) -> str:
        """One line a person reads: scheduled steps and what the monitor let through, per trait."""
        through = ", ".join(f"{t} {v:.0%}" for t, v in self.share_let_through().items())
        return (
            f"schedule named {self.share_scheduled():.0%} of {len(self.edited)} steps; "
            f"the monitor let through {through} of them"
        )

    def mean_gain(self) -> dict[str, float]:
        return {t: float(self.g[..., i].mean()) for i, t in enumerate(self.traits)}

    def records(self) -> list[dict]:
        c, g, applied = self.c.tolist(), self.g.tolist(), self.applied.tolist()
        want = self.want.tolist() if self.want is not None else None
        out = []
        for t in range(len(c)):
            traits = {
                name: {
                    "C": [round(row[i], 5) for row in c[t]],
                    "gain": [round(row[i], 5) for row in g[t]],
                    "applied": [row[i] for row in applied[t]],
                    **({"want": WANT_WORDS[want[t][i]]} if want is not None else {}),
                }
                for i, name in enumerate(self.traits)
            }
            out.append({"step": t, "time": round(t / self.frame_rate, 4), "traits": traits})
        return out

    def to_dict(self) -> dict:
        summary = {
            "share_applied": self.share_applied(),
            "share_scheduled": self.share_scheduled(),
            "share_let_through": self.share_let_through(),
            "mean_gain": self.mean_gain(),
        }
        return {"settings": self.settings, "summary": summary, "steps": self.records()}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path
