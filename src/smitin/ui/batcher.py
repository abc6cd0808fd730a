"""Many users, one model: requests that arrive together run as one mixed batch (`smitin.mixed`).

A `Batcher` collects the submissions that arrive while the model is busy, or within a short
window, and runs them in a worker thread as one `generate_mixed` batch while it holds the model's
lock; each user watches only their own row through a `Ticket`, which has the surface of
`smitin.ui.live.LiveRun` (steps, live trace, recorded frames, wait, result, stop).

Live: a run may come with its user's `Controls` (`smitin.controls`), applied to its own trait
slots of the batch's steering at the next step, so one user's hand never reaches another's
music; `ahead_s` paces the batch to stay that far ahead of its listeners. An endless submission
runs alone, as a `smitin.stream.Stream`, until its user stops it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from .. import budget
from ..backbone import Backbone
from ..controls import Controls, controlled
from ..generate import RequestError, max_new_tokens
from ..mixed import Request as MixedRequest
from ..mixed import generate_mixed
from ..monitor import Trace
from ..steering import Steer, Steering
from ..stream import Stream
from .live import SPARE_POSITIONS, Cancelled, CodeRecorder, Outcome, Request, live_trace, run_generation

BATCH_WINDOW_S = 0.3  # how long a request that finds the model idle waits for others to join it
MAX_BATCH_REQUESTS = 32  # requests (rows before CFG) in one mixed batch at most


class _Pass:
    """One model call of a batch (a mixed batch, or one run with an audio prompt), watched live."""

    def __init__(
        self,
        backbone: Backbone,
        requests: int,
        total_steps: int,
        cancel: threading.Event,
        live: bool = False,
        ahead_s: float | None = None,
    ) -> None:
        self.requests = requests
        self.recorder = CodeRecorder(backbone, total_steps + SPARE_POSITIONS, requests, cancel)
        self.state: Steering | None = None
        self.started = time.perf_counter()
        self.live, self.ahead_s, self.cancel = live, ahead_s, cancel
        self.frame_rate = backbone.frame_rate
        self.play_start: float | None = None  # when its first listener started hearing it

    def on_start(self, state: Steering) -> None:
        if self.live:
            state.go_live()
        self.state = state

    def pace(self, _past: int, _ids: object) -> None:
        """Hold the model while it is more than `ahead_s` ahead of its listeners (a decoder-step hook)."""
        if self.ahead_s is None:
            return
        while not self.cancel.is_set():
            made = max(0, self.recorder.length - self.recorder.k) / self.frame_rate
            start = self.play_start
            if (
                made <= self.ahead_s + 1.0
                if start is None
                else made - (time.perf_counter() - start) <= self.ahead_s
            ):
                return
            time.sleep(0.005)

    @property
    def steps(self) -> int:
        state = self.state
        if state is not None and state.rows_n is not None:
            return state.steps_seen
        return max(0, self.recorder.forwards - 1)  # nothing steered: count the decoder's forwards

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class Ticket(Outcome):
    """One run of a submission (e.g. its steered run), watched by the thread that submitted it.

    The surface of `LiveRun`: `alive`, `steps`, `total_steps`, `trace()` (this request's sample
    and traits of the batch's live trace), `frames()` (this sample's codes so far), `wait()`,
    `result()`, `stop()` (detaches the whole submission: see `Batcher`).
    """

    def __init__(
        self,
        submission: Submission,
        name: str,
        steers: Sequence[Steer],
        total_steps: int,
        controls: Controls | None = None,
    ) -> None:
        self.submission, self.name, self.steers = submission, name, list(steers)
        self.backbone, self.request = submission.backbone, submission.request
        self.total_steps = total_steps
        self.controls = controls
        self.pass_: _Pass | None = None  # set when the model starts on this run
        self.stream: Stream | None = None  # an endless run's stream, once it started
        self.sample, self.slots = 0, list(range(len(self.steers)))
        self.done = threading.Event()

    def playing(self) -> None:
        """Its listener started hearing it: the model is paced from now on."""
        if self.stream is not None and self.stream.play_start is None:
            self.stream.play_start = time.perf_counter()
        elif self.pass_ is not None and self.pass_.play_start is None:
            self.pass_.play_start = time.perf_counter()

    @property
    def alive(self) -> bool:
        """Waiting or running (a submission's tickets all end with its batch)."""
        return not self.done.is_set()

    @property
    def running(self) -> bool:
        return (self.pass_ is not None or self.stream is not None) and self.alive

    @property
    def batch_requests(self) -> int:
        """Requests in the model call this run is part of (0 before it starts)."""
        return self.pass_.requests if self.pass_ is not None else 0

    @property
    def elapsed(self) -> float:
        if self.stream is not None:
            return time.perf_counter() - self.stream.started
        return self.pass_.elapsed() if self.pass_ is not None else 0.0

    @property
    def steps(self) -> int:
        if self.stream is not None:
            return int(self.stream.codes().shape[1])
        return self.pass_.steps if self.pass_ is not None else 0

    def trace(self) -> Trace | None:
        """This request's live trace (None before the first step or without any steer in the batch)."""
        if self.stream is not None:
            return self.stream.trace() if self.steers else None
        whole = live_trace(self.pass_.state) if self.pass_ is not None else None
        return whole.select(self.sample, self.slots) if whole is not None else None

    def frames(self) -> torch.Tensor:
        if self.stream is not None:
            return self.stream.codes()
        if self.pass_ is None:
            return torch.zeros(self.backbone.num_codebooks, 0, dtype=torch.long)
        return self.pass_.recorder.frames(self.sample)

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the run ends or `timeout` seconds have passed."""
        self.done.wait(timeout)

    def stop(self) -> None:
        self.submission.stop()

    def _end(self) -> None:
        if self._result is None and self._error is None:
            self._error = Cancelled("generation stopped")
        self.done.set()


class Submission:
    """One user's runs (e.g. unsteered and steered), all with the same prompt, options and seed."""

    def __init__(
        self,
        batcher: Batcher,
        backbone: Backbone,
        request: Request,
        runs: Sequence[tuple[str, Sequence[Steer]]],
        controls: dict[str, Controls] | None = None,
        endless: bool = False,
        ahead_s: float | None = None,
    ) -> None:
        self.batcher, self.backbone, self.request = batcher, backbone, request
        self.endless, self.ahead_s = endless, ahead_s
        total = max_new_tokens(backbone, request.options.duration)
        controls = controls or {}
        self.tickets = [Ticket(self, name, steers, total, controls.get(name)) for name, steers in runs]
        self.arrived = time.perf_counter()
        self.detached = False
        self.batch: _Batch | None = None

    @property
    def mixable(self) -> bool:
        """Text to music of a set length: `generate_mixed` serves it (no audio prompt, not endless)."""
        return self.request.audio_prompt is None and not self.endless

    def joins(self, other: Submission) -> bool:
        """Whether `other` can share a mixed batch with this one: same model, duration, options, pace."""
        return (
            self.mixable
            and other.mixable
            and self.backbone is other.backbone
            and self.ahead_s == other.ahead_s
            and replace(self.request.options, seed=None) == replace(other.request.options, seed=None)
        )

    def stop(self) -> None:
        """Detach: this user's results are dropped; the batch stops only if nobody else waits for it."""
        self.batcher.detach(self)


@dataclass
class _Batch:
    submissions: list[Submission]
    cancel: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def abandoned(self) -> bool:
        return all(s.detached for s in self.submissions)


class Batcher:
    """One model serving many users: submissions that arrive while it is busy, or within
    `window_s` of the first, run together as one `generate_mixed` batch (each run a request with
    its own seed, so its codes are those of the request run alone), in a worker thread that holds
    `lock` (the model's) while it runs.

    Text-to-music submissions with the same model, duration and options batch together, up to
    `max_requests` requests and what the free memory holds (`smitin.budget`; a request too big
    even alone is refused by `generate_mixed` with the estimate); one with an audio prompt runs on its own through `continue_audio`,
    its runs one after another. A submitter that stops is detached (its results are dropped); a
    batch is cancelled only when none of its submitters still waits. `sizes` lists the requests
    of every model call made, in order.
    """

    def __init__(
        self,
        lock: threading.Lock | None = None,
        window_s: float = BATCH_WINDOW_S,
        max_requests: int = MAX_BATCH_REQUESTS,
    ) -> None:
        if window_s < 0 or max_requests < 1:
            raise ValueError(f"window_s must be >= 0 and max_requests >= 1, not {window_s}, {max_requests}")
        self.lock = lock if lock is not None else threading.Lock()
        self.window_s, self.max_requests = window_s, max_requests
        self.sizes: list[int] = []
        self._cond = threading.Condition()
        self._pending: list[Submission] = []
        self._worker: threading.Thread | None = None

    def submit(
        self,
        backbone: Backbone,
        request: Request,
        runs: Sequence[tuple[str, Sequence[Steer]]],
        *,
        controls: dict[str, Controls] | None = None,
        endless: bool = False,
        ahead_s: float | None = None,
    ) -> Submission:
        """Queue one user's runs (name, steers) of `request`; watch them through `.tickets`.

        controls: run name -> its live `Controls`; endless: one run, going on until stopped;
        ahead_s: pace the model to stay that many seconds ahead of the listener.
        """
        if endless and len(runs) != 1:
            raise ValueError("an endless submission has one run")
        submission = Submission(self, backbone, request, runs, controls, endless, ahead_s)
        with self._cond:
            self._pending.append(submission)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="smitin-ui-batcher", daemon=True)
                self._worker.start()
            self._cond.notify_all()
        return submission

    @property
    def waiting(self) -> int:
        """Submissions queued for the next batch."""
        with self._cond:
            return len(self._pending)

    def detach(self, submission: Submission) -> None:
        """See `Submission.stop`; returns once a cancelled batch has left the model."""
        with self._cond:
            submission.detached = True
            batch = submission.batch
            if submission in self._pending:  # not started: it never runs
                self._pending.remove(submission)
                for t in submission.tickets:
                    t._end()
                self._cond.notify_all()
                return
            if batch is None or not batch.abandoned:
                return
            if batch.ended.is_set():
                return
            batch.cancel.set()
            for t in submission.tickets:  # an endless stream stops on its own controls
                if t.controls is not None:
                    t.controls.stop()
        batch.ended.wait()

    # -- the worker ------------------------------------------------------------------------------
    def _next(self) -> _Batch | None:
        """The next batch: the oldest submission and those that can join it; None when idle."""
        with self._cond:
            while True:
                if not self._pending:
                    self._worker = None  # the next submit starts another worker
                    return None
                first = self._pending[0]
                left = first.arrived + self.window_s - time.perf_counter()
                if left > 0:
                    self._cond.wait(left)
                    continue
                chosen, n = [first], len(first.tickets)
                most = min(self.max_requests, max(n, self._fit(first)))
                for other in self._pending[1:]:
                    if first.joins(other) and n + len(other.tickets) <= most:
                        chosen.append(other)
                        n += len(other.tickets)
                batch = _Batch(chosen)
                for s in chosen:
                    self._pending.remove(s)
                    s.batch = batch
                return batch

    @staticmethod
    def _fit(first: Submission) -> int:
        """How many requests like `first` the free memory holds at once (`smitin.budget`'s estimate)."""
        opts = first.request.options
        steps = first.tickets[0].total_steps if first.tickets else 1
        return budget.estimate(first.backbone, 1, steps, opts.duration, opts.cfg).most_rows()

    def _work(self) -> None:
        while (batch := self._next()) is not None:
            try:
                with self.lock:
                    if not batch.cancel.is_set():
                        self._run(batch)
            finally:  # the model is free again before anyone hears that their run ended
                for s in batch.submissions:
                    for t in s.tickets:
                        t._end()
                batch.ended.set()

    def _run(self, batch: _Batch) -> None:
        tickets = [t for s in batch.submissions for t in s.tickets]
        first = batch.submissions[0]
        if first.endless:
            self._stream(batch, tickets[0])
        elif first.mixable:
            self._call(batch, tickets, mixed=True)
        else:  # an audio prompt: `continue_audio`, one run after another
            for t in tickets:
                if batch.cancel.is_set():
                    break
                self._call(batch, [t], mixed=False)

    def _stream(self, batch: _Batch, ticket: Ticket) -> None:
        """An endless run: a `Stream` going on in windows until its user (or a detach) stops it."""
        request = ticket.request
        controls = (
            ticket.controls if ticket.controls is not None else Controls([s.name for s in ticket.steers])
        )
        ticket.controls = controls
        self.sizes.append(1)
        try:
            stream = Stream(
                ticket.backbone,
                request.prompt or None,
                ticket.steers,
                options=request.options,
                controls=controls,
                audio_prompt=request.audio_prompt,
                endless=True,
                ahead_s=ticket.submission.ahead_s,
            )
            ticket.stream = stream.start()
            while not stream.done:
                if batch.cancel.wait(0.05):
                    controls.stop()
            stream._thread.join()
            result = stream.result()
        except Exception as exc:
            ticket._error = exc
            return
        result.trace.settings.update(batch_requests=1, batch_users=1, seconds_taken=round(ticket.elapsed, 2))
        ticket._result = result

    def _call(self, batch: _Batch, tickets: list[Ticket], mixed: bool) -> None:
        """One model call for `tickets` (one sample each); results and errors go to the tickets."""
        backbone, request = tickets[0].backbone, tickets[0].request
        live = any(t.controls is not None for t in tickets)
        ahead = tickets[0].submission.ahead_s
        one = _Pass(backbone, len(tickets), tickets[0].total_steps, batch.cancel, live, ahead)
        requests, slot = [], 0
        for b, t in enumerate(tickets):
            t.sample, t.slots, t.pass_ = b, list(range(slot, slot + len(t.steers))), one
            slot += len(t.steers)
            options = t.request.options
            requests.append(MixedRequest(t.request.prompt or None, t.steers, seed=options.seed or 0))
        self.sizes.append(len(tickets))
        hands = [
            (t.controls, {s.name: t.slots[i] for i, s in enumerate(t.steers)})
            for t in tickets
            if t.controls is not None
        ]
        try:
            with (
                one.recorder.recording(),
                controlled(backbone, lambda: one.state, hands),
                backbone.decoder_steps(one.pace),
            ):
                if mixed:
                    results = generate_mixed(
                        backbone,
                        requests,
                        options=request.options,
                        progress=False,
                        on_start=one.on_start,
                        isolate=True,
                    )
                else:
                    results = [run_generation(backbone, tickets[0].steers, request, one.on_start)]
        except Exception as exc:  # each submitter hears it from its own ticket
            for t in tickets:
                t._error = exc
            return
        for t, result in zip(tickets, results, strict=True):
            if t.submission.detached:  # its user left: the row is dropped
                continue
            if result.failure is not None:  # this request alone failed; its user hears why
                t._error = RequestError(f"{t.name}: {result.failure}")
                continue
            result.trace.settings.update(
                batch_requests=len(tickets),
                batch_users=len(batch.submissions),
                seconds_taken=round(one.elapsed(), 2),
            )
            t._result = result
