"""What a diagnosis depends on, as plain data (no torch): `smitin diagnose --help` needs only this."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class DiagnoseError(ValueError):
    """A bad option of `smitin diagnose`; the command line prints it as `smitin: error: ...`."""


ANALYSES = ("directions", "monitor", "causal", "push", "sampling")


@dataclass
class Settings:
    """Everything a diagnosis depends on (written to its JSON)."""

    trait: str = "drums"
    out: Path = Path("diagnosis")
    model: str = "bundled"
    device: str = "cpu"
    data: Path | None = None
    songs: int = 40  # rendered when no --data is given
    probes: Path | None = None  # a probe file; None: fitted on the probe tracks
    analyses: list[str] = field(default_factory=lambda: list(ANALYSES))
    prompts: int = 8  # trait-free continuation prompts (one per track, round robin)
    seeds: int = 2
    duration: float = 4.0
    prompt_seconds: float = 3.0
    alpha: float = 5.0
    pairs: int = 48  # with/without pairs read by the direction and monitor analyses
    noise_levels: list[float] = field(default_factory=lambda: [0.05, 0.15, 0.3])
    variants: list[str] = field(default_factory=list)  # extra push variants, NAME:KEY=VALUE,...
    # other traits to watch in every continuation, and to hold in the variants that say keep=1:
    # TRAIT (probes fitted on the probe tracks) or TRAIT=FILE
    keep: list[str] = field(default_factory=list)
    seed: int = 0
    per_track: int = 6
    progress: bool = True
