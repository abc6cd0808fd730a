"""How to generate: one set of options shared by the API, the CLI, the studio and the experiment.

Plain data with no torch import, so the command line can build and check it before loading a
model. The field names are the words used everywhere: `--every` / `every`, `--gain` / `gain`,
`--rows` / `rows`, `--guidance` / `guidance_scale` (the `transformers` name).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

ROWS = ("both", "cond")  # CFG rows the edit goes to: conditional and unconditional, or conditional only
GAINS = ("switch", "ramp")  # the monitor's response: on/off at the threshold, or a fade towards it
ENGINES = ("auto", "eager", "captured")  # how steps run: `smitin.captured` (auto: captured on CUDA)
EDITS = ("shift", "bounded")  # a fixed alpha * sigma push, or to the class-mean reading and no further
MAX_SEED = 2**63 - 1  # torch and numpy seeds: a signed 64-bit number
MAX_GUIDANCE = 30.0  # MusicGen uses 3; beyond a few tens the guided logits overflow into NaN
MAX_DURATION = 3600.0  # seconds; the model's positions refuse far less (about 40 s), with the limit
MAX_EVERY = 10_000  # more steps than any MusicGen can take (2,048 positions)


@dataclass(frozen=True)
class GenerationOptions:
    """Everything a generation needs besides the model, the prompt and the traits.

    duration: seconds of new audio; seed: torch seed (None: not reseeded); batch: samples per
    prompt; guidance_scale: classifier-free guidance, 0..MAX_GUIDANCE (<= 1 turns CFG off); every: edit every N-th
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
        d = self.duration
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 < d <= MAX_DURATION:
            raise ValueError(
                f"duration must be a positive number of seconds (at most {MAX_DURATION:g}; the model "
                f"allows less), not {self.duration!r}"
            )
        if self.seed is not None and (not _whole(self.seed) or not 0 <= self.seed <= MAX_SEED):
            raise ValueError(f"seed must be a whole number from 0 to 2**63-1, not {self.seed!r}")
        if not _whole(self.batch):
            raise ValueError(f"batch must be a whole number, not {self.batch!r}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, not {self.batch!r}")
        if self.guidance_scale is not None:
            g = self.guidance_scale
            if isinstance(g, bool) or not isinstance(g, (int, float)) or not math.isfinite(g):
                raise ValueError(f"guidance_scale must be a finite number, not {g!r}")
            if not 0 <= g <= MAX_GUIDANCE:
                raise ValueError(
                    f"guidance_scale must be between 0 and {MAX_GUIDANCE:g} (3 is MusicGen's; at most 1 "
                    f"turns classifier-free guidance off), not {g!r}"
                )
        if not _whole(self.every) or not 1 <= self.every <= MAX_EVERY:
            raise ValueError(
                f"every (the schedule interval) must be a whole number from 1 to {MAX_EVERY}, not {self.every!r}"
            )
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

    @property
    def model_guidance(self) -> float:
        """The guidance scale handed to the model: 1.0 (no CFG) when `cfg` is off, as documented."""
        return float(self.guidance_scale) if self.cfg else 1.0

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


def _whole(value: Any) -> bool:
    """An int (numpy ints too) that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def engine_arg(p: Any, more: str = "") -> None:
    """`--engine` on an argparse parser `p`: the generation commands' and the studio's (one text)."""
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="how decoder steps run: captured (static KV cache, each step replayed as one CUDA graph; "
        "same codes as eager), eager (transformers' own loop), or auto (default: captured on CUDA, "
        f"eager on CPU){more}",
    )
