"""``smitin generate ... --stream``: write the audio as it is made, for scripts and other front ends.

The WAV at --out grows on disk chunk by chunk (its header is brought up to date after every
chunk, so a reader sees a valid, growing file); `--out -` writes raw 16-bit little-endian mono
PCM to stdout instead, for a player (`| aplay -f S16_LE -r RATE`, `| ffplay -f s16le -ar RATE -ac 1 -`).
`--endless` keeps going past the model's positions until Ctrl-C (or SIGTERM); either way what was
made is kept, and the trace (with the steps the run made) is written at the end.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .registry import UsageError

AHEAD_S = 0.5  # --realtime: seconds the model may run ahead of the listener


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The streaming flags of generate and continue."""
    p.add_argument(
        "--stream",
        action="store_true",
        help="write the audio as it is made: --out grows chunk by chunk (a valid WAV after every chunk), "
        "or '--out -' writes raw 16-bit mono PCM to stdout; same codes as without --stream",
    )
    p.add_argument(
        "--endless",
        action="store_true",
        help="with --stream: keep going past the model's positions, each window continuing the last "
        "--context seconds, until Ctrl-C; what was made is kept",
    )
    p.add_argument(
        "--context",
        type=float,
        default=8.0,
        help="with --endless: seconds of the last window the next one continues (default 8; each "
        "window holds 20 s of positions)",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help=f"with --stream: pace the model to stay {AHEAD_S:g} s ahead of real time (for a player on stdout)",
    )


def check(args: argparse.Namespace) -> None:
    """Refuse flag combinations that cannot stream, before a model is loaded."""
    streaming = getattr(args, "stream", False)
    if not streaming:
        for flag in ("endless", "realtime"):
            if getattr(args, flag, False):
                raise UsageError(f"--{flag} needs --stream")
        return
    if args.batch != 1:
        raise UsageError("--stream plays one sample: leave --batch at 1")
    if getattr(args, "plot", None) is not None:
        raise UsageError("--plot is not made with --stream; write --trace and plot it afterwards")
    if args.endless and args.context <= 0:
        raise UsageError(f"--context must be a number of seconds > 0, not {args.context:g}")


def run(args: argparse.Namespace, backbone: Any, steers: Sequence[Any], options: Any) -> int:
    """Stream one generation (or continuation) to --out or stdout; Ctrl-C stops and keeps it."""
    import soundfile as sf

    from ..stream import stream

    to_stdout = str(args.out) == "-"
    kwargs: dict[str, Any] = {"options": options, "endless": args.endless, "context_s": args.context}
    if args.command == "continue":
        kwargs["audio_prompt"] = args.audio
    if args.realtime:
        kwargs["ahead_s"] = AHEAD_S
    try:
        live = stream(backbone, args.prompt or None, steers, **kwargs)
    except ValueError as err:
        raise UsageError(str(err)) from None
    sr = backbone.sample_rate
    out = None if to_stdout else sf.SoundFile(str(args.out), "w", samplerate=sr, channels=1, subtype="PCM_16")
    previous = signal.signal(signal.SIGTERM, lambda *_: live.stop())
    stopped = False
    try:
        try:
            for chunk in live:
                pcm = np.clip(chunk.audio, -1, 1)
                if out is not None:
                    out.write(pcm)
                    out.flush()  # the header now counts these frames: readers see a valid file
                else:
                    sys.stdout.buffer.write((pcm * 32767).astype("<i2").tobytes())
                    sys.stdout.buffer.flush()
        except KeyboardInterrupt:
            stopped = True
            live.stop()
            for chunk in live:  # what was made, to the end of the last step
                if out is not None:
                    out.write(np.clip(chunk.audio, -1, 1))
    except BrokenPipeError:  # the player went away: stop, keep the trace
        live.stop()
        stopped = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        if out is not None:
            out.close()
    result = live.result()
    seconds = result.codes.shape[-1] / backbone.frame_rate
    say = sys.stderr if to_stdout else sys.stdout
    where = "stdout (16-bit PCM)" if to_stdout else str(args.out)
    how = " (stopped)" if stopped or live.controls.stopped else ""
    print(f"streamed {seconds:.2f} s at {sr} Hz to {where}{how}", file=say)
    if args.trace:
        result.trace.save(Path(args.trace))
        print(f"wrote {args.trace}", file=say)
    if steers:
        print(result.trace.describe(), file=say)
    return 0
