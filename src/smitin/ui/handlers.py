"""What the studio's Generate button does: submit the user's runs, watch them live, save them.

Each call is a generator of page updates (Gradio runs many at once): it submits the runs to the
model's `Batcher` (which runs the requests that arrive together as one mixed batch) and turns what
its own tickets show into page updates. `with_status` turns library errors into page messages.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from typing import Any

import gradio as gr
import numpy as np
import torch

from .. import audio as audio_io
from ..backbone import Backbone, ModelError
from ..chunked import ChunkDecoder
from ..controls import Controls
from ..generate import Result, check_request
from ..monitor import Trace
from ..probes import ProbeFileError
from ..recipes import parse_heads
from ..steering import Steer
from .batcher import Batcher, Submission, Ticket
from .figures import spectrogram_figure, trace_figure
from .holder import Downloads, ModelHolder
from .live import Request
from .session import (
    Session,
    build_steers,
    load_probe_sets,
    page_options,
    parse_lanes,
    parse_threshold,
    unsteered,
)
from .streaming import AHEAD_S, LiveDesk, wav_bytes

POLL_S = 0.5  # how often the request thread redraws the live plot
STREAM_POLL_S = 0.05  # how often it looks for a new audio chunk

# What Generate updates: status, live plot, live stream, unsteered audio, steered audio, spectrograms, files.
Outputs = tuple[Any, Any, Any, Any, Any, Any, Any]


def with_status(fn: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """Turn library errors into a message in the browser instead of a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
            if hasattr(result, "__next__"):
                yield from result
            else:
                yield result
        except (ModelError, ProbeFileError, ValueError, OSError) as err:
            raise gr.Error(str(err)) from err

    return wrapper


class GenerateHandler:
    """The Generate button: the user's unsteered run (when comparing) and steered run, played live.

    A call is a generator of page updates. It submits the runs to the model's `Batcher` (two
    requests of one batch, same prompt and seed, or of a bigger batch with other users' requests)
    and shows its own tickets: status, live C(t) plot, and the steered run's audio as a stream of
    chunks (`ChunkDecoder`) while it is made. The run takes the user's `Controls` (opened on the
    `desk` under the session's `key`): sliders, monitor, lanes and Stop reach it at its next step.
    Stop keeps what was made; a closed tab detaches the user (the batch is cancelled, and waited
    for, only when nobody else waits for it). The results are saved as WAV and trace JSON at the
    end, in `downloads` (one folder for the app, a numbered sub-folder per generation).
    """

    def __init__(
        self,
        holder: ModelHolder,
        poll_s: float = POLL_S,
        downloads: Downloads | None = None,
        desk: LiveDesk | None = None,
        ahead_s: float | None = AHEAD_S,
    ) -> None:
        self.holder = holder
        self.poll_s = poll_s
        self.downloads = downloads if downloads is not None else Downloads()
        self.desk = desk if desk is not None else LiveDesk()
        self.ahead_s = ahead_s

    def __call__(
        self,
        session: Session,
        prompt: str | None,
        audio_prompt: str | None,
        duration: float,
        seed: int,
        guidance: float,
        every: int,
        rows: str,
        gain: str,
        monitor: bool,
        threshold: str | None,
        heads: str | None,
        direction: str,
        compare: bool,
        stream_on: bool,
        lanes_text: str | None,
        *alphas: float,
        key: str | None = None,
        endless: bool = False,
    ) -> Iterator[Outputs]:
        options = page_options(duration, seed, guidance, every, rows, gain)  # the CLI's bounds
        options = replace(options, engine=self.holder.engine)
        request = Request(prompt=prompt or "", audio_prompt=audio_prompt or None, options=options)
        threshold_v, heads_v = parse_threshold(threshold), parse_heads(heads)
        traits = [p.trait for p in session.probes]
        # a bad lane: a message, nothing runs (endless: lanes may run past the duration)
        strengths = dict(zip(traits, alphas, strict=False))
        lanes = parse_lanes(lanes_text, traits, float("inf") if endless else options.duration, strengths)
        backbone = self.holder.loaded(session.model)
        if backbone is None:  # another model: load it once the model is free
            with self.holder.busy:
                backbone = self.holder.get(session.model)
        sets = load_probe_sets(session, backbone)
        steers = build_steers(
            sets,
            alphas,
            monitor=monitor,
            threshold=threshold_v,
            heads=heads_v,
            direction=direction,
            lanes=lanes,
        )
        if request.audio_prompt is None and not endless:  # refused here, it never joins (and fails) a batch
            check_request(backbone, steers, options)
        total = None if endless else options.duration + (backbone.num_codebooks - 1) / backbone.frame_rate
        runs = [("unsteered", unsteered(steers))] if compare and not endless else []
        runs.append(("steered", steers))
        controls = Controls([s.name for s in steers])
        if key is not None:
            self.desk.open(key, controls, [s.name for s in steers])
        try:
            submission = self.holder.batcher.submit(
                backbone,
                request,
                runs,
                controls={"steered": controls},
                endless=endless,
                ahead_s=self.ahead_s if stream_on else None,
            )
            skip = prompt_frames(backbone, request.audio_prompt) if stream_on else 0
            results = yield from self._watch(
                submission, controls, bool(steers), stream_on, total, lanes, skip
            )
        finally:
            if key is not None:
                self.desk.close(key, controls)
        yield self._finish(backbone, steers, results, total, lanes)

    def _watch(
        self,
        submission: Submission,
        controls: Controls,
        plot: bool,
        stream_on: bool,
        total: float | None,
        lanes: dict | None = None,
        prompt: int = 0,
    ) -> Generator[Outputs, None, dict[str, Result]]:
        """Yield one update at once, then one per audio chunk and per poll, until the runs end or
        Stop; their Results by name (a stopped run's: what it made). The stream starts after the
        `prompt` frames of an audio prompt (the runs' codes begin with them)."""
        skip = gr.skip()
        tickets = {t.name: t for t in submission.tickets}
        steered, reference = tickets["steered"], tickets.get("unsteered")
        decoder = ChunkDecoder(steered.backbone)
        decoder.done = prompt
        rate = steered.backbone.sample_rate
        drawn = 0.0
        made: dict[str, torch.Tensor] = {}
        try:
            first = True
            while True:
                alive, stopped = steered.alive, controls.stopped
                running = [t for t in tickets.values() if t.running]
                if stopped:  # what was made up to now is what is kept, and played to its end
                    made = {name: final_frames(t) for name, t in tickets.items()}
                sound = skip
                if stream_on and (steered.running or not alive):
                    frames = made["steered"] if stopped else final_frames(steered)
                    audio = decoder.push(frames, final=not alive or stopped)
                    if audio is not None and len(audio):
                        sound = wav_bytes(audio, rate)
                        steered.playing()
                figure = skip
                now = time.perf_counter()
                if plot and (first or now - drawn >= self.poll_s or not alive or stopped):
                    figure = trace_figure(
                        steered.trace(), reference.trace() if reference else None, total, lanes
                    )
                    drawn = now
                if first or sound is not skip or figure is not skip:
                    status = live_status(running, self.holder.batcher, stopped)
                    yield (status, figure, sound, skip, skip, skip, skip)
                first = False
                if not alive or stopped:
                    break
                steered.wait(STREAM_POLL_S)
            if stopped and alive:  # keep what was made before letting go of the batch
                return {name: kept(t, made[name][:, prompt:]) for name, t in tickets.items()}
        finally:  # stopped or disconnected: detach (and end the batch if nobody else waits for it)
            submission.stop()
        return {name: t.result() for name, t in tickets.items()}

    def _finish(
        self,
        backbone: Backbone,
        steers: Sequence[Steer],
        results: dict[str, Result],
        total: float | None,
        lanes: dict | None = None,
    ) -> Outputs:
        """Save each run as WAV and trace JSON (in this app's downloads folder); the final page update."""
        out = self.downloads.new()
        files, named = [], []
        for name, result in results.items():
            wav = result.save(out / f"{name}.wav", out / f"{name}-trace.json")[0]
            files += [str(wav), str(out / f"{name}-trace.json")]
            named.append((name, result.audio[0]))
        steered_r, ref = results["steered"], results.get("unsteered")
        shares = steered_r.trace.share_applied() if len(steered_r.trace.c) else {}
        summary = (
            ", ".join(
                f"{s.name} (alpha {s.alpha:+g}): edit on {shares.get(s.name, 0.0):.0%} of steps"
                for s in steers
            )
            or "no traits"
        )
        changes = len(steered_r.trace.changes)
        moved = f"; {changes} live change{'s' if changes != 1 else ''}" if changes else ""
        times = ", ".join(f"{n} {r.trace.settings.get('seconds_taken', '?')} s" for n, r in results.items())
        size = steered_r.trace.settings.get("batch_requests", 1)
        batch = f"; one batch of {size} requests" if size > 1 else ""
        made = steered_r.codes.shape[-1] / backbone.frame_rate
        settings = steered_r.trace.settings
        stopped = settings.get("stopped") or settings.get("stream", {}).get("stopped")
        word = f"stopped at {made:.1f} s" if stopped else "done"
        return (
            f"{word} ({times}{batch}). {summary}{moved}.",
            trace_figure(steered_r.trace, ref.trace if ref else None, total, lanes),
            gr.skip(),
            files[0] if ref else None,
            files[-2],
            spectrogram_figure(named, backbone.sample_rate),
            files,
        )


def prompt_frames(backbone: Backbone, audio_prompt: str | None) -> int:
    """Frames of codes an audio prompt takes (a continuation's codes begin with them); 0 without one."""
    if not audio_prompt:
        return 0
    return int(backbone.encode(audio_io.read(audio_prompt, backbone.sample_rate)[None]).shape[-1])


def final_frames(ticket: Ticket) -> torch.Tensor:
    """The run's codes so far; once it finished, all of them (the recorder lags one step behind)."""
    done = ticket.finished
    if not ticket.alive and done is not None:
        return done.codes[0]
    return ticket.frames()


def kept(ticket: Ticket, codes: torch.Tensor) -> Result:
    """What a stopped run made: its complete frames `codes`, decoded whole, and its trace cut to them."""
    backbone = ticket.backbone
    trace = ticket.trace()
    steps = codes.shape[-1]
    if trace is None:
        t = len(ticket.steers)
        trace = Trace(
            [s.name for s in ticket.steers],
            backbone.frame_rate,
            torch.zeros(0, 1, t),
            torch.zeros(0, 1, t),
            torch.zeros(0, dtype=torch.bool),
        )
    trace = replace(
        trace,
        c=trace.c[:steps],
        g=trace.g[:steps],
        edited=trace.edited[:steps],
        want=trace.want[:steps] if trace.want is not None else None,
    )
    trace.settings.update(
        stopped=True, seconds_taken=round(ticket.elapsed, 2), batch_requests=ticket.batch_requests or 1
    )
    audio = backbone.decode(codes[None]).numpy() if steps else np.zeros((1, 0), np.float32)
    return Result(audio, backbone.sample_rate, codes[None], trace)


def live_status(running: Sequence[Ticket], batcher: Batcher, stopping: bool = False) -> str:
    """What the page says while a generation waits or runs."""
    if stopping:
        return "stopping: keeping what was made"
    if not running:
        queued = batcher.waiting
        return "waiting for the model" + (f" ({queued} submissions queued)" if queued > 1 else "")
    t = running[0]
    names = " + ".join(r.name for r in running)
    batch = f"; batch of {t.batch_requests} requests" if t.batch_requests > 1 else ""
    of = f" / {t.total_steps}" if t.stream is None else " (endless)"
    return f"generating {names}: step {t.steps}{of} ({t.elapsed:.1f} s{batch})"
