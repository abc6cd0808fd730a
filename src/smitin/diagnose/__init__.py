"""`smitin diagnose`: where is a model's steering lever, and why does a push turn music into noise?

On any MusicGen and trait, with the experiment's own data split, probes and independent judge:

- `directions`: is loudness or noisiness part of the push direction (readings of real, loudness
  matched and noise-added excerpt pairs along it; correlation with RMS and spectral flatness);
- `monitor`: does the monitor read noise as the trait (probe readings of trait-free clips with
  white or pink noise added, and of noise alone);
- `causal`: which heads and layers move the next token towards the trait's codes (teacher-forced
  one-head and one-layer edits), and whether probe accuracy ranks heads by that effect;
- `sweep` with `variants`: how hard, how many heads, which layers, schedule, fixed shift or bounded
  edit, and sampling (temperature, top-k), each continuation judged against its unsteered pair.

Modules: `settings` (plain data) and `command` (options, handler) need no torch; `context` (model,
data, probes, judge), `signal` (loudness, flatness, noise), the analyses, `summary` (markdown) and
`diagnosis` (end to end) are imported when the command runs.
"""

from __future__ import annotations

from .command import add_arguments, run
from .settings import ANALYSES, Settings

__all__ = ["ANALYSES", "Settings", "add_arguments", "run"]
