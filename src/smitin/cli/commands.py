"""Every smitin command, in one table, and the entry point that parses and runs them."""

from __future__ import annotations

import argparse

from ..version import __version__
from . import arguments as a
from .registry import Command, build, dispatch

DESCRIPTION = "Steer MusicGen with per-head probes and self-monitoring (SMITIN)."

EPILOG = """\
typical session (offline, with the bundled model):
  smitin data synth --out stems --songs 50           # render multitrack songs (needs fluidsynth)
  smitin probes train --data stems --trait drums --out drums.safetensors
  smitin probes show drums.safetensors --plot drums.png
  smitin generate "a calm piano piece" --steer drums.safetensors:5 --out out.wav --trace trace.json

with a real model (internet or a local Hugging Face cache):
  smitin probes train --model facebook/musicgen-small --data stems --trait drums --out drums-small.safetensors
"""

GROUPS = {"probes": "train, extract and inspect per-head probes", "data": "datasets"}


COMMANDS: tuple[Command, ...] = (
    Command(
        ("probes", "train"),
        "train one probe per attention head for a trait",
        "smitin.cli.probes:train",
        a.probes_train,
        description="Extract head activations for pos/neg segments and train a probe on every head; "
        "writes one .safetensors file with the probes and metadata.",
        files=("out",),
        folders=("cache",),
    ),
    Command(
        ("probes", "extract"),
        "only extract head activations into a resumable shard cache",
        "smitin.cli.probes:extract",
        a.probes_extract,
        description="Write activation shards (fp16) and a manifest; rerun to resume after an interruption.",
        folders=("cache",),
    ),
    Command(
        ("probes", "show"),
        "summarise a probe file",
        "smitin.cli.probes:show",
        a.probes_show,
        description="Best heads and accuracies.",
        files=("plot",),
    ),
    Command(
        ("generate",),
        "text-to-music with traits steered",
        "smitin.cli.generation:generate",
        a.generate,
        description="Generate music from a text prompt, steering the given traits; writes WAV and trace.",
    ),
    Command(
        ("continue",),
        "continue an audio prompt with traits steered",
        "smitin.cli.generation:generate",
        a.continue_,
        description="Continue an audio file (mixed to mono, resampled to the model's rate) with steering.",
    ),
    Command(
        ("data", "synth"),
        "render multitrack songs offline (exact stems, captions)",
        "smitin.synth:run_synth",
        a.data_synth,
        description="Render songs into DIR/<song>/<stem>.wav plus songs.jsonl with FluidSynth.",
        folders=("out",),
    ),
    Command(
        ("demo",),
        "the main job, offline: probes, unsteered vs ITI vs SMITIN, report",
        "smitin.cli.generation:demo",
        a.demo,
        folders=("out",),
    ),
    Command(
        ("experiment",),
        "the paper's experiment table: success, FAD, similarity per method",
        "smitin.experiment:run",
        "smitin.experiment:add_arguments",
        folders=("out",),
    ),
    Command(
        ("diagnose",),
        "find a model's steering lever: directions, push strength and place, monitor, sampling",
        "smitin.diagnose:run",
        "smitin.diagnose:add_arguments",
        description="Measure, for one trait, whether loudness or noise is part of the push direction, how "
        "presence and noisiness change with alpha, heads, layers, schedule and fixed vs bounded edits, whether "
        "the monitor reads noise as the trait, and what sampling does; writes OUT/diagnosis.json and "
        "OUT/summary.md.",
        folders=("out",),
    ),
    Command(
        ("ui",), "the steering studio: a web UI on localhost", "smitin.ui:run", "smitin.ui:add_arguments"
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (imports no torch)."""
    parser = build(
        COMMANDS,
        GROUPS,
        prog="smitin",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"smitin {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``smitin ...``: parse, then run the command's handler."""
    return dispatch(build_parser().parse_args(argv))
