"""How to generate: one set of options shared by the API, the CLI, the studio and the experiment.

Plain data with no torch import, so the command line can build and check it before loading a
model. The field names are the words used everywhere: `--every` / `every`, `--gain` / `gain`,
`--rows` / `rows`, `--guidance` / `guidance_scale` (the `transformers` name).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

ROWS = ("both", "cond")  # CFG rows the edit goes to: conditional and unconditional, or conditional only
GAINS = ("switch", "ramp")  # the monitor's response: on/off at the threshold, or a fade towards it
ENGINES = ("auto", "eager", "captured")  # how steps run: `smitin.captured` (auto: captured on CUDA)
EDITS = ("shift", "bounded")  # a fixed alpha * sigma push, or to the class-mean reading and no further


@dataclass(frozen=True)
class GenerationOptions:
    """Everything a generation needs besides the model, the prompt and the traits.

    duration: seconds of new audio; seed: torch seed (None: not reseeded); batch: samples per
    prompt; guidance_scale: classifier-free guidance (<= 1 turns CFG off); every: edit every N-th
    step (default 1, smitin's recipe; the paper's sparse schedule is 5); rows: CFG rows to edit; gain: the monitor's response;
    sampling: passed to `transformers`' `generate` unchanged (temperature, top_k, do_sample...);
    engine: "auto" (captured on CUDA, eager elsewhere), "eager" or "captured" (`smitin.captured`).
    """

    duration: float = 5.0
    seed: int | None = 0
    batch: int = 1
    guidance_scale: float = 3.0
    every: int = 1  # smitin's recipe edits every step; the paper's edits every 5th (smitin.recipes)
    rows: str = "both"
    gain: str = "switch"
    engine: str = "auto"
    sampling: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (
            isinstance(self.duration, (int, float)) and math.isfinite(self.duration) and self.duration > 0
        ):
            raise ValueError(f"duration must be a positive number of seconds, not {self.duration!r}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, not {self.batch!r}")
        if self.guidance_scale is not None and not math.isfinite(self.guidance_scale):
            raise ValueError(f"guidance_scale must be a finite number, not {self.guidance_scale!r}")
        if self.every < 1:
            raise ValueError(f"every (the schedule interval) must be >= 1, not {self.every!r}")
        if self.rows not in ROWS:
            raise ValueError(f"rows must be one of {ROWS}, not {self.rows!r}")
        if self.gain not in GAINS:
            raise ValueError(f"gain must be one of {GAINS}, not {self.gain!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {self.engine!r}")

    @property
    def cfg(self) -> bool:
        """Whether generation runs conditional and unconditional rows (guidance_scale > 1)."""
        return self.guidance_scale is not None and self.guidance_scale > 1

    @classmethod
    def build(cls, options: GenerationOptions | None = None, **overrides: Any) -> GenerationOptions:
        """`options` (or the defaults) with `overrides`; keywords that are not fields go to `sampling`."""
        base = options or cls()
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in overrides.items() if k in names}
        extra = {k: v for k, v in overrides.items() if k not in names}
        if extra:
            known["sampling"] = {**known.get("sampling", base.sampling), **extra}
        return replace(base, **known) if known else base

    def settings(self) -> dict[str, Any]:
        """What a trace records: the options, sampling flattened in."""
        out = asdict(self)
        return {**{k: v for k, v in out.items() if k != "sampling"}, **self.sampling}
