"""The `smitin` command: argument parsing only; the work is done by the library modules."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from .version import __version__

# Commands whose module gives `add_arguments(parser)` and `run(args) -> int`.
COMMANDS = {
    "demo": ("smitin.demo", "the main job, offline: probes, unsteered vs ITI vs SMITIN, report"),
    "experiment": ("smitin.evaluate", "the paper's experiment table: success, FAD, similarity per method"),
    "ui": ("smitin.ui", "the steering studio: a web UI on localhost"),
}

EPILOG = """\
typical session (offline, with the bundled model):
  smitin data synth --out stems --songs 50           # render multitrack songs (needs fluidsynth)
  smitin probes train --data stems --trait drums --out drums.safetensors
  smitin probes show drums.safetensors --plot drums.png
  smitin generate "a calm piano piece" --steer drums.safetensors:5 --out out.wav --trace trace.json

with a real model (internet or a local Hugging Face cache):
  smitin probes train --model facebook/musicgen-small --data stems --trait drums --out drums-small.safetensors
"""


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="bundled",
        help="MusicGen to use: a hub id (facebook/musicgen-small|medium|large|melody; needs internet or the "
        "local cache), a folder made by save_pretrained, or 'bundled' (smitin's tiny offline model; default)",
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--dtype", default=None, help="weights dtype, e.g. float16 on a GPU (default: as saved)")


def _data_args(p: argparse.ArgumentParser) -> None:
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


def _steer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--steer",
        action="append",
        default=[],
        metavar="FILE[:ALPHA]",
        help="probe file to steer with, optionally with its strength (default 5; negative removes the trait). "
        "Repeat for several traits",
    )
    p.add_argument(
        "--no-monitor", action="store_true", help="always push (plain ITI) instead of self-monitoring"
    )
    p.add_argument(
        "--threshold", type=float, default=None, help="monitor threshold (default median(acc) - std(acc))"
    )
    p.add_argument(
        "--heads", default="soft", help="'soft' (accuracy-weighted, default) or K to steer the top-K heads"
    )
    p.add_argument(
        "--every",
        type=int,
        default=5,
        help="intervene every N steps (default 5, the paper's sparse schedule)",
    )
    p.add_argument("--rows", choices=("both", "cond"), default="both", help="CFG rows to edit (default both)")
    p.add_argument(
        "--gain", choices=("switch", "ramp"), default="switch", help="monitor response (default switch)"
    )
    p.add_argument("--duration", type=float, default=5.0, help="seconds of new audio (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--batch", type=int, default=1, help="samples to generate at once (default 1)")
    p.add_argument(
        "--guidance",
        "--guidance-scale",
        dest="guidance_scale",
        type=float,
        default=3.0,
        help="classifier-free guidance scale (default 3; 1 turns CFG off)",
    )
    p.add_argument("--out", type=Path, default=Path("out.wav"), help="WAV to write (default out.wav)")
    p.add_argument("--trace", type=Path, default=None, help="JSON file for the per-step monitor trace")
    p.add_argument("--plot", type=Path, default=None, help="PNG with the trace and the spectrogram")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smitin",
        description="Steer MusicGen with per-head probes and self-monitoring (SMITIN).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"smitin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    probes = sub.add_parser("probes", help="train, extract and inspect per-head probes").add_subparsers(
        dest="probes_command", required=True
    )
    train = probes.add_parser(
        "train",
        help="train one probe per attention head for a trait",
        description="Extract head activations for pos/neg segments and train a probe on every head; "
        "writes one .safetensors file with the probes and metadata.",
    )
    _model_args(train)
    _data_args(train)
    train.add_argument("--out", type=Path, required=True, help="probe file to write (.safetensors)")
    train.add_argument(
        "--direction", choices=("probe", "mass_mean"), default="probe", help="steering direction"
    )
    train.add_argument(
        "--C", type=float, default=1.0, help="inverse L2 strength, as scikit-learn (default 1)"
    )
    train.add_argument(
        "--val-fraction", type=float, default=0.2, help="share of tracks held out (default 0.2)"
    )
    train.add_argument("--split-seed", type=int, default=0, help="seed of the by-track split")
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    extract = probes.add_parser(
        "extract",
        help="only extract head activations into a resumable shard cache",
        description="Write activation shards (fp16) and a manifest; rerun to resume after an interruption.",
    )
    _model_args(extract)
    _data_args(extract)
    extract.add_argument("--quiet", action="store_true", help="no progress bars")

    show = probes.add_parser("show", help="summarise a probe file", description="Best heads and accuracies.")
    show.add_argument("file", type=Path)
    show.add_argument("--top", type=int, default=10, help="heads to list (default 10)")
    show.add_argument("--plot", type=Path, default=None, help="PNG of the layer x head accuracy heatmap")

    gen = sub.add_parser(
        "generate",
        help="text-to-music with traits steered",
        description="Generate music from a text prompt, steering the given traits; writes WAV and trace.",
    )
    gen.add_argument("prompt", help="text prompt ('' for unconditional)")
    _model_args(gen)
    _steer_args(gen)

    cont = sub.add_parser(
        "continue",
        help="continue an audio prompt with traits steered",
        description="Continue an audio file (mixed to mono, resampled to the model's rate) with steering.",
    )
    cont.add_argument("audio", type=Path, help="audio prompt (wav, flac, ...)")
    cont.add_argument("--prompt", default=None, help="optional text prompt")
    _model_args(cont)
    _steer_args(cont)

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser(
        "synth",
        help="render multitrack songs offline (exact stems, captions)",
        description="Render songs into DIR/<song>/<stem>.wav plus songs.jsonl with FluidSynth.",
    )
    from .synth import add_synth_arguments

    add_synth_arguments(synth)
    for name, (module, help_text) in COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            cmd = sub.add_parser(name, help=help_text, description=help_text)
            importlib.import_module(module).add_arguments(cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .audio import AudioError
    from .backbone import ModelError
    from .probes import ProbeFileError

    try:
        from .data import DataError
    except ImportError:  # pragma: no cover
        DataError = ValueError  # noqa: N806
    try:
        return _dispatch(args)
    except (ModelError, ProbeFileError, DataError, AudioError) as err:
        print(f"smitin: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("smitin: interrupted; cached work is kept and a rerun resumes", file=sys.stderr)
        return 130


def _dispatch(args) -> int:
    if args.command == "probes":
        return {"train": _probes_train, "extract": _probes_extract, "show": _probes_show}[
            args.probes_command
        ](args)
    if args.command in ("generate", "continue"):
        return _generate(args)
    if args.command == "data":
        from .synth import run_synth

        return run_synth(args) or 0
    if args.command in COMMANDS:
        return importlib.import_module(COMMANDS[args.command][0]).run(args) or 0
    raise AssertionError(args.command)


def _load(args):
    from .backbone import load

    return load(args.model, device=args.device, dtype=args.dtype)


def _segments(args, backbone):
    from . import data

    if args.positive or args.negative:
        if not (args.positive and args.negative):
            raise data.DataError("give both --positive and --negative folders")
        return data.folder_segments(
            args.positive,
            args.negative,
            sample_rate=backbone.sample_rate,
            seconds=args.seconds,
            trait=args.trait or "trait",
        )
    if not (args.data and args.trait):
        raise data.DataError("give --data DIR and --trait NAME (or --positive DIR --negative DIR)")
    return data.stem_segments(
        args.data,
        args.trait,
        sample_rate=backbone.sample_rate,
        seconds=args.seconds,
        layout=args.layout,
        gate_db=args.gate_db,
        max_segments_per_track=args.max_per_track,
    )


def _probes_train(args) -> int:
    from .data import describe
    from .probes import fit_cached

    backbone = _load(args)
    segments = _segments(args, backbone)
    print(describe(segments.summary))
    cache = args.cache or args.out.with_suffix(".cache")
    probes = fit_cached(
        backbone,
        segments,
        args.out,
        cache_dir=cache,
        reuse=False,
        batch_size=args.batch_size,
        last=args.last,
        text=args.text,
        progress=not args.quiet,
        val_fraction=args.val_fraction,
        C=args.C,
        direction=args.direction,
        seed=args.split_seed,
    )
    tr, va = probes.meta["training"]["train"], probes.meta["training"]["validation"]
    print(
        f"split by track: train {tr['segments']} segments ({tr['positive']} positive) from {tr['tracks']} tracks, "
        f"validation {va['segments']} ({va['positive']} positive) from {va['tracks']} tracks"
    )
    print(probes.summary(5))
    print(f"wrote {args.out} (activation cache: {cache})")
    return 0


def _probes_extract(args) -> int:
    from .activations import extract
    from .data import describe

    backbone = _load(args)
    segments = _segments(args, backbone)
    print(describe(segments.summary))
    cache = args.cache or Path(f"{args.trait or 'trait'}.cache")
    acts = extract(
        backbone,
        segments,
        batch_size=args.batch_size,
        last=args.last,
        text=args.text,
        cache_dir=cache,
        progress=not args.quiet,
    )
    print(f"{len(acts.z)} segments x {args.last} positions of {backbone.layout.fingerprint()} in {cache}")
    return 0


def _probes_show(args) -> int:
    from .probes import ProbeSet

    probes = ProbeSet.load(args.file)
    print(probes.summary(args.top))
    if args.plot:
        from .plots import heatmap, save

        ax = heatmap(probes)
        print(f"wrote {save(ax.figure, args.plot)}")
    return 0


def parse_steer(spec: str) -> tuple[Path, float]:
    """FILE[:ALPHA] -> (path, alpha); a colon that is part of the path is kept."""
    path, sep, alpha = spec.rpartition(":")
    if sep:
        try:
            return Path(path), float(alpha)
        except ValueError:
            pass
    return Path(spec), 5.0


def _generate(args) -> int:
    from .generate import continue_audio, generate
    from .options import GenerationOptions
    from .probes import ProbeSet
    from .steering import Steer

    steers_spec = [parse_steer(s) for s in args.steer]
    for path, _ in steers_spec:  # fail on a bad probe file before loading a large model
        ProbeSet.load(path)
    backbone = _load(args)
    heads = args.heads if args.heads == "soft" else int(args.heads)
    steers = [
        Steer(
            ProbeSet.load(path, backbone),
            alpha=alpha,
            heads=heads,
            monitor=not args.no_monitor,
            threshold=args.threshold,
        )
        for path, alpha in steers_spec
    ]
    options = GenerationOptions(
        duration=args.duration,
        seed=args.seed,
        batch=args.batch,
        guidance_scale=args.guidance_scale,
        every=args.every,
        rows=args.rows,
        gain=args.gain,
    )
    if args.command == "generate":
        result = generate(backbone, args.prompt or None, steer=steers, options=options)
    else:
        result = continue_audio(backbone, args.audio, prompt=args.prompt, steer=steers, options=options)
    paths = result.save(args.out, args.trace)
    for path in paths:
        print(f"wrote {path} ({result.audio.shape[1] / result.sample_rate:.2f} s at {result.sample_rate} Hz)")
    if args.trace:
        print(f"wrote {args.trace}")
    if steers:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in result.trace.share_applied().items())
        print(f"edit applied on {shares} of steps")
    if args.plot:
        from .plots import report

        report(
            args.plot,
            traces=[("steered", result.trace)],
            audio=[("output", result.audio[0], result.sample_rate)],
        )
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
