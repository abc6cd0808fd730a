"""The options of every command smitin itself defines, as functions that add them to a parser.

Only argparse and pathlib are imported here, so the whole parser is built without torch.
`smitin experiment` and `smitin ui` keep their options next to their settings, in their own
torch-free command modules (`smitin.experiment.config`, `smitin.ui.command`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..options import EDITS, engine_arg
from ..recipes import DEFAULT_RECIPE, RECIPES
from . import streaming

DEMO_PROMPT = "a calm piano piece"
SYNTH_SOURCES = ("mix", "mma", "procedural")  # == smitin.synth.render.SOURCES (a test checks)


# -- shared groups -----------------------------------------------------------------------------------


def model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="bundled",
        help="MusicGen to use: a hub id (facebook/musicgen-small|medium|large|melody; needs internet or the "
        "local cache), a folder made by save_pretrained, or 'bundled' (smitin's tiny offline model; default)",
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--dtype", default=None, help="weights dtype, e.g. float16 on a GPU (default: as saved)")


def data_args(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("data (either --data with --trait, or --positive with --negative)")
    src.add_argument(
        "--data",
        type=Path,
        help="stem collection: DIR/<track>/<stem>.wav|flac (plain), MUSDB18-HQ, MoisesDB or Slakh2100; "
        "positives mix all stems where the trait's stem plays, negatives the same mix without it",
    )
    src.add_argument("--trait", help="stem family to probe, e.g. drums, bass, guitar, piano, vocals")
    src.add_argument("--positive", type=Path, help="folder of clips WITH the trait (two-folder traits)")
    src.add_argument("--negative", type=Path, help="folder of clips WITHOUT the trait")
    src.add_argument(
        "--layout", default="auto", help="auto | plain | musdb | moisesdb | slakh (default auto)"
    )
    src.add_argument(
        "--seconds", type=float, default=3.0, help="segment length in seconds (default 3, as the paper)"
    )
    src.add_argument(
        "--gate-db",
        type=float,
        default=-35.0,
        help="a stem counts as playing where it is within this many dB of the track's mix level (default -35)",
    )
    src.add_argument(
        "--max-per-track", type=int, default=None, help="at most this many segment pairs per track"
    )
    ext = p.add_argument_group("extraction")
    ext.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder for activation shards: written as extraction goes, a rerun resumes (default: OUT + .cache)",
    )
    ext.add_argument("--batch-size", type=int, default=8, help="segments per forward pass (default 8)")
    ext.add_argument("--last", type=int, default=1, help="positions per segment read at its end (default 1)")
    ext.add_argument(
        "--text", default=None, help="text condition for extraction (default: the null condition)"
    )


def steer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--steer",
        action="append",
        default=[],
        metavar="FILE[:ALPHA][:keep]",
        help="probe file to steer with, optionally with its strength (default 5; negative removes the trait; "
        "|ALPHA| <= 100); ':keep' holds the trait instead of adding it (as --keep). Repeat for several traits",
    )
    p.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="FILE[:ALPHA]",
        help="probe file of a trait to hold (e.g. the prompt's piano while adding drums): watched from the "
        "first step and pushed back with +ALPHA only while the probes read it below the threshold, never "
        "before a reading and never past the threshold. Repeat for several traits",
    )
    p.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default=DEFAULT_RECIPE,
        help="how to steer: "
        + "; ".join(f"{r.name}: {r.summary}" for r in RECIPES.values())
        + ". --heads, --direction, --every and --no-monitor override it",
    )
    p.add_argument(
        "--no-monitor", action="store_true", help="always push (plain ITI) instead of self-monitoring"
    )
    p.add_argument(
        "--lane",
        action="append",
        default=[],
        metavar="TRAIT=SPANS",
        help="trait automation: when the trait should be there, e.g. drums=0-3:remove,3-6:add,6-8:free "
        "(seconds of new audio; add pushes until the probes read it present, remove until absent, free "
        "leaves it alone, keep holds it: pushes only after the probes read it falling below the threshold; "
        "outside the spans: the strength's sign, or keep for --keep; optional ,ramp=SECONDS crossfades). "
        "TRAIT as in the probe file; repeat for several traits",
    )
    p.add_argument(
        "--lanes",
        type=Path,
        default=None,
        help='lanes as JSON: {"drums": "0-3:remove,3-6:add", "piano": [[0, 4, "add"], [4, 8, "remove"]], '
        '"bass": {"spans": [[0, 8, "add"]], "ramp": 0.5}}',
    )
    p.add_argument(
        "--threshold",
        default=None,
        help="monitor threshold: 'positive' (what the watched heads read on the trait's class mean; the "
        "smitin recipe's, the default), 'paper' (median(acc) - std(acc); the paper recipe's) or a "
        "probability in (0, 1); see docs/results.md",
    )
    p.add_argument(
        "--heads",
        default=None,
        help="K to steer the K most accurate heads at weight 1, or 'soft' (accuracy-weighted, all heads); "
        "default: the recipe's (16)",
    )
    p.add_argument(
        "--direction",
        choices=("auto", "probe", "mass_mean", "denoised"),
        default=None,
        help="push along the class-mean difference (mass_mean, ITI's), the unit probe weights (probe, the "
        "paper's), that difference made blind to noise (denoised), or auto: the class mean unless noise moves "
        "it (the probe file says; then the probe weights); default: the recipe's (smitin: auto)",
    )
    p.add_argument(
        "--every",
        type=int,
        default=None,
        help="intervene every N steps (default: the recipe's; 1, or 5 for the paper's sparse schedule)",
    )
    p.add_argument(
        "--edit",
        choices=EDITS,
        default=None,
        help="shift: add alpha * sigma along the direction at every edit (every recipe's, the default); "
        "bounded: push each head towards the trait's class-mean reading by at most that, and no further",
    )
    p.add_argument("--rows", choices=("both", "cond"), default="both", help="CFG rows to edit (default both)")
    p.add_argument(
        "--gain", choices=("switch", "ramp"), default="switch", help="monitor response (default switch)"
    )
    engine_arg(p)
    p.add_argument(
        "--duration",
        type=float,
        default=5.0,
        help="seconds of new audio (default 5; at most what the model's positions allow: about 40 s for "
        "facebook/musicgen-*, less after a long prompt)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed, 0 to 2**63-1 (default 0)")
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        help="samples to generate at once (default 1; refused before generating when the estimated "
        "memory exceeds what the machine has free)",
    )
    p.add_argument(
        "--guidance",
        "--guidance-scale",
        dest="guidance_scale",
        type=float,
        default=3.0,
        help="classifier-free guidance scale, 0 to 30 (default 3; at most 1 turns CFG off)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out.wav"),
        help="WAV to write (default out.wav); a clip louder than full scale is scaled down as a whole "
        "(the gain is in the trace)",
    )
    p.add_argument("--trace", type=Path, default=None, help="JSON file for the per-step monitor trace")
    p.add_argument("--plot", type=Path, default=None, help="PNG with the trace and the spectrogram")


# -- one function per command ------------------------------------------------------------------------


def probes_train(p: argparse.ArgumentParser) -> None:
    model_args(p)
    data_args(p)
    p.add_argument("--out", type=Path, required=True, help="probe file to write (.safetensors)")
    p.add_argument(
        "--direction",
        choices=("probe", "mass_mean", "denoised"),
        default="probe",
        help="the file's own direction (all three are stored; steering chooses with --recipe/--direction)",
    )
    p.add_argument("--C", type=float, default=1.0, help="inverse L2 strength, as scikit-learn (default 1)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of tracks held out (default 0.2)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the by-track split")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def probes_extract(p: argparse.ArgumentParser) -> None:
    model_args(p)
    data_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def probes_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path)
    p.add_argument("--top", type=int, default=10, help="heads to list (default 10)")
    p.add_argument("--plot", type=Path, default=None, help="PNG of the layer x head accuracy heatmap")


def generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="?", default=None, help="text prompt ('' for unconditional)")
    p.add_argument(
        "--prompts",
        type=Path,
        default=None,
        help="batch mode instead of PROMPT: a file with one prompt per line, or JSON lines "
        '{"prompt": ..., "steer": ["FILE:ALPHA"], "seed": N, "duration": S}; writes OUT/NNNN.wav and '
        "OUT/NNNN.json per line (--out is then a folder, default 'generations'), skips lines already "
        "written, and splits the lines across processes under torchrun",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    model_args(p)
    steer_args(p)
    streaming.add_arguments(p)


def continue_(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", type=Path, help="audio prompt (wav, flac, ...)")
    p.add_argument("--prompt", default=None, help="optional text prompt")
    p.add_argument(
        "--with-prompt",
        action="store_true",
        help="write the prompt as given followed by the new audio (default: the new audio only)",
    )
    model_args(p)
    steer_args(p)
    streaming.add_arguments(p)


def data_synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (plain layout: <song>/<stem>.wav)")
    p.add_argument("--songs", type=int, default=50, help="number of songs (default 50)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed -> identical files")
    p.add_argument(
        "--sample-rate",
        type=int,
        default=32000,
        help="Hz of the written WAVs, 8000-96000 (default 32000, facebook/musicgen's rate; the bundled model "
        "runs at 16000). Any rate works for any model: probes train resamples the stems to the model's rate",
    )
    p.add_argument("--seconds", type=float, default=None, help="length of every song (default 30-60 s)")
    p.add_argument("--workers", type=int, default=None, help="render processes (default: up to 2)")
    p.add_argument("--source", choices=SYNTH_SOURCES, default="mix", help="mma grooves, procedural, or both")
    p.add_argument("--soundfont", default=None, help="GM .sf2 (default: FluidR3_GM, then TimGM6mb)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", type=Path, default=Path("smitin-demo"), help="output folder (default smitin-demo)"
    )
    p.add_argument("--model", default="bundled", help="MusicGen to use (default: the bundled tiny model)")
    p.add_argument("--trait", default="drums", help="trait to add (default drums)")
    p.add_argument("--prompt", default=DEMO_PROMPT, help=f"text prompt (default {DEMO_PROMPT!r})")
    p.add_argument(
        "--alpha",
        type=float,
        default=5.0,
        help="steering strength of every steered clip (default 5, the paper's)",
    )
    p.add_argument(
        "--top-k", type=int, default=None, help="heads ITI steers (default 16, as smitin's recipe)"
    )
    p.add_argument("--duration", type=float, default=8.0, help="seconds per clip (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed, shared by the three clips (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
