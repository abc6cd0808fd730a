"""Steering studio: a local Gradio web UI to steer MusicGen and watch the probes while it generates.

`smitin ui` loads one model (the bundled one by default) and a set of probe files (by default
drum probes trained once on the bundled model from a small rendered stem set and cached under
~/.cache/smitin). Each browser session keeps its own settings in `gr.State`; generation requests
go through one queue, so one model in memory serves everyone without cross-talk.

The engine is not changed: a worker thread runs `generate_mixed` (or `continue_audio`, or a
`smitin.stream.Stream` when endless) with the usual steering, while the request thread reads the
live `Steering` buffers (c, g, edited) to redraw the monitor plot and decodes the recorded codes
into a gapless audio stream; the user's `Controls` change the run's traits at its next step.

Modules, each one job: `session` (a browser session's settings, parsing, sliders, steers),
`live` (generation in a worker thread, watched), `batcher` (many users' requests as one mixed
batch, each with its own live controls), `figures`, `holder` (the model in memory, the downloads
folder), `streaming` (each session's live controls, stream chunks), `handlers` (what Generate
does), `app` (the page's layout and wiring; needs gradio), `command` (`smitin ui`).

Importing this package loads only `command` (no torch, no gradio: `smitin ui --help` is quick);
the other names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..recipes import parse_heads  # torch-free: the CLI and the studio read heads the same way
from .command import add_arguments, free_port, prepare, run

if TYPE_CHECKING:
    from .app import GenerateHandler, ModelHolder, build_app
    from .figures import heatmap_figure, spectrogram_figure, trace_figure
    from .live import Cancelled, CodeRecorder, LiveRun, Request, live_trace, run_generation
    from .session import (
        ALPHA_RANGE,
        DEFAULT_ALPHA,
        MAX_TRAITS,
        ProbeEntry,
        Session,
        add_probes,
        build_steers,
        load_probe_sets,
        new_session,
        parse_paths,
        parse_threshold,
        probe_table,
        slider_updates,
        unsteered,
    )

_LAZY = {
    "app": ("GenerateHandler", "ModelHolder", "build_app"),
    "figures": ("heatmap_figure", "spectrogram_figure", "trace_figure"),
    "live": (
        "Cancelled",
        "CodeRecorder",
        "LiveRun",
        "Request",
        "live_trace",
        "run_generation",
    ),
    "session": (
        "ALPHA_RANGE",
        "DEFAULT_ALPHA",
        "MAX_TRAITS",
        "ProbeEntry",
        "Session",
        "add_probes",
        "build_steers",
        "load_probe_sets",
        "new_session",
        "parse_paths",
        "parse_threshold",
        "probe_table",
        "slider_updates",
        "unsteered",
    ),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "ALPHA_RANGE",
    "DEFAULT_ALPHA",
    "MAX_TRAITS",
    "Cancelled",
    "CodeRecorder",
    "GenerateHandler",
    "LiveRun",
    "ModelHolder",
    "ProbeEntry",
    "Request",
    "Session",
    "add_arguments",
    "add_probes",
    "build_app",
    "build_steers",
    "free_port",
    "heatmap_figure",
    "live_trace",
    "load_probe_sets",
    "new_session",
    "parse_heads",
    "parse_paths",
    "parse_threshold",
    "prepare",
    "probe_table",
    "run",
    "run_generation",
    "slider_updates",
    "spectrogram_figure",
    "trace_figure",
    "unsteered",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
