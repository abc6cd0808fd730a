"""What the studio's Generate button does: submit the user's runs, watch them live, save them.

Each call is a generator of page updates (Gradio runs many at once): it submits the runs to the
model's `Batcher` (which runs the requests that arrive together as one mixed batch) and turns what
its own tickets show into page updates. `with_status` turns library errors into page messages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import gradio as gr

from ..backbone import Backbone, ModelError
from ..generate import Result, check_request
from ..options import GenerationOptions
from ..probes import ProbeFileError
from ..recipes import parse_heads
from ..steering import Steer
from .batcher import Batcher, Submission, Ticket
from .figures import spectrogram_figure, trace_figure
from .holder import Downloads, ModelHolder
from .live import Preview, Request, pcm16
from .session import (
    Session,
    build_steers,
    load_probe_sets,
    parse_lanes,
    parse_threshold,
    unsteered,
)

POLL_S = 0.5  # how often the request thread redraws the live plot

# What Generate updates: status, live plot, preview, unsteered audio, steered audio, spectrograms, files.
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
    """The Generate button: the user's unsteered run (when comparing) and steered run, watched live.

    A call is a generator of page updates. It submits the runs to the model's `Batcher` (two
    requests of one batch, same prompt and seed, or of a bigger batch with other users' requests)
    and shows its own tickets: status, live C(t) plot, audio preview. When the page stops it
    (Stop, a closed tab), the user is detached: the batch is cancelled, and waited for, only when
    nobody else waits for it. The results are saved as WAV and trace JSON at the end, in
    `downloads` (one folder for the app, a numbered sub-folder per generation).
    """

    def __init__(
        self, holder: ModelHolder, poll_s: float = POLL_S, downloads: Downloads | None = None
    ) -> None:
        self.holder = holder
        self.poll_s = poll_s
        self.downloads = downloads if downloads is not None else Downloads()

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
        preview_on: bool,
        lanes_text: str | None,
        *alphas: float,
    ) -> Iterator[Outputs]:
        options = GenerationOptions(
            duration=float(duration),
            seed=int(seed),
            guidance_scale=float(guidance),
            every=int(every),
            rows=rows,
            gain=gain,
        )
        request = Request(prompt=prompt or "", audio_prompt=audio_prompt or None, options=options)
        threshold_v, heads_v = parse_threshold(threshold), parse_heads(heads)
        traits = [p.trait for p in session.probes]
        lanes = parse_lanes(lanes_text, traits, options.duration)  # a bad lane: a message, nothing runs
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
        if request.audio_prompt is None:  # refused here, it never joins (and fails) a batch
            check_request(backbone, steers, options)
        total = options.duration + (backbone.num_codebooks - 1) / backbone.frame_rate
        runs = [("unsteered", unsteered(steers))] if compare else []
        runs.append(("steered", steers))
        submission = self.holder.batcher.submit(backbone, request, runs)
        results = yield from self._watch(submission, bool(steers), preview_on, total, lanes)
        yield self._finish(backbone, steers, results, total, lanes)

    def _watch(
        self,
        submission: Submission,
        plot: bool,
        preview_on: bool,
        total: float,
        lanes: dict | None = None,
    ) -> Generator[Outputs, None, dict[str, Result]]:
        """Yield one update at once and one per poll until the runs end; their Results by name."""
        skip = gr.skip()
        tickets = {t.name: t for t in submission.tickets}
        steered, reference = tickets["steered"], tickets.get("unsteered")
        previews = {name: Preview(t.backbone) for name, t in tickets.items()}
        try:
            first = True
            while first or steered.alive:  # a submission's runs all end with its batch
                if not first:
                    steered.wait(self.poll_s)
                first = False
                started = [t.pass_ for t in tickets.values() if t.pass_ is not None]
                running = [t for t in tickets.values() if started and t.pass_ is started[-1]]
                shown = steered if steered in running else (running[0] if running else None)
                audio = None
                if preview_on and shown is not None and shown.alive:
                    audio = previews[shown.name].update(shown.frames())
                figure = (
                    trace_figure(
                        steered.trace(),
                        reference.trace() if reference else None,
                        total,
                        lanes,
                    )
                    if plot
                    else skip
                )
                sound = (steered.backbone.sample_rate, pcm16(audio)) if audio is not None else skip
                yield (live_status(running, self.holder.batcher), figure, sound, skip, skip, skip, skip)
        finally:  # stopped or disconnected: detach (and end the batch if nobody else waits for it)
            submission.stop()
        return {name: t.result() for name, t in tickets.items()}

    def _finish(
        self,
        backbone: Backbone,
        steers: Sequence[Steer],
        results: dict[str, Result],
        total: float,
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
        shares = steered_r.trace.share_applied()
        summary = (
            ", ".join(f"{s.name} (alpha {s.alpha:+g}): edit on {shares[s.name]:.0%} of steps" for s in steers)
            or "no traits"
        )
        times = ", ".join(f"{n} {r.trace.settings['seconds_taken']} s" for n, r in results.items())
        size = steered_r.trace.settings.get("batch_requests", 1)
        batch = f"; one batch of {size} requests" if size > 1 else ""
        return (
            f"done ({times}{batch}). {summary}.",
            trace_figure(steered_r.trace, ref.trace if ref else None, total, lanes),
            (backbone.sample_rate, pcm16(steered_r.audio[0])),
            files[0] if ref else None,
            files[-2],
            spectrogram_figure(named, backbone.sample_rate),
            files,
        )


def live_status(running: Sequence[Ticket], batcher: Batcher) -> str:
    """What the page says while a generation waits or runs."""
    if not running:
        queued = batcher.waiting
        return "waiting for the model" + (f" ({queued} submissions queued)" if queued > 1 else "")
    t = running[0]
    names = " + ".join(r.name for r in running)
    batch = f"; batch of {t.batch_requests} requests" if t.batch_requests > 1 else ""
    return f"generating {names}: step {t.steps} / {t.total_steps} ({t.elapsed:.1f} s{batch})"
