"""Play it while it is made, steer it while it plays: generation as a stream of audio chunks.

`stream(backbone, prompt, steers, ...)` starts the model in a worker thread and returns a
`Stream`: iterate it for `Chunk`s of audio (decoded as the codes arrive by `ChunkDecoder`, so
that the chunks join without a seam) while the run takes changes from its `Controls` (a trait's
strength, monitor or lane) at the next step. Nothing else about the engine changes: each window
is one `generate` / `continue_codes` call with the usual steering hooks, so a stream with no
changes makes the codes `generate` makes with the same seed, and a change made at step s makes the
codes of a lane that schedules it at step s (tests/test_stream.py).

Endless: past the model's positions (about 41 s for MusicGen) the stream goes on in windows,
each continuing the last `context_s` seconds of the one before (a sliding window), until it is
stopped. Windows hold at most `window_s` seconds of positions (20 by default, fewer than the
model allows), because a step's cost grows with the positions before it: on the bundled model on
a loaded 2-core CPU a step took 8 ms at 100 positions and 16 to 23 ms past 1,000 (real time is
20 ms), so a full window would fall behind the listener near its end. Stopping (`Stream.stop`, `Controls.stop`, or leaving the loop) ends the run at its next
step and keeps what was made: `Stream.result()` holds the streamed audio, its codes and the trace
with every change. `ahead_s` paces the model to stay that many seconds ahead of a listener who
started playing at the first chunk: a change is then heard within about `ahead_s`.
Just over 450 lines: the window loop, its pacing and the stream's trace share one lock and one
list of windows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from . import audio as audio_io
from .backbone import Backbone
from .chunked import ChunkDecoder
from .controls import Controls, controlled
from .generate import Result, check_request, continue_codes, generate, max_new_tokens, max_seconds
from .lanes import Lane
from .monitor import Trace
from .options import GenerationOptions
from .recorder import Cancelled, CodeRecorder
from .steering import Steer, Steering

CONTEXT_S = 8.0  # endless: seconds of the last window that the next one continues (at most half a window)
WINDOW_S = 20.0  # endless: seconds of positions per window (prompt + new): a step's cost grows with positions
POLL_S = 0.005  # how long the listening thread waits for the next step at most


@dataclass
class Chunk:
    """A piece of the stream's audio (mono float32), in order; `start` is where it begins (s).

    `made_s`: seconds of audio the model had made when the chunk was handed out (ahead of it by
    the decoder's lookahead); `changes`: the control changes applied since the previous chunk.
    """

    audio: np.ndarray
    start: float
    sample_rate: int
    made_s: float
    changes: list[dict[str, Any]] = field(default_factory=list)
    at: float = 0.0  # time.perf_counter() when it was handed out

    @property
    def end(self) -> float:
        return self.start + len(self.audio) / self.sample_rate


@contextmanager
def _no_final_decode(backbone: Backbone) -> Iterator[None]:
    """Skip the codec's whole-clip decode at the end of `generate`: the stream decoded it already."""
    codec = backbone.model.audio_encoder

    def decode(audio_codes: torch.Tensor, *_args: Any, **_kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(audio_values=torch.zeros(audio_codes.shape[1], 1, 1))

    codec.decode = decode
    try:
        yield
    finally:
        codec.__dict__.pop("decode", None)  # `keep_codes` may have removed it already


@dataclass
class _Window:
    """One model call of a stream: its recorder, the frames it continues, its live state."""

    recorder: CodeRecorder
    prompt_frames: int
    offset: int  # frames of new audio the stream had made before it
    state: Steering | None = None
    trace: Trace | None = None
    frames: int = 0  # new frames it made (known at its end)


class Stream:
    """One streaming generation (see the module's docstring); made by `stream`."""

    def __init__(
        self,
        backbone: Backbone,
        prompt: str | None = None,
        steer: Sequence[Steer] = (),
        *,
        options: GenerationOptions | None = None,
        controls: Controls | None = None,
        audio_prompt: str | Path | None = None,
        endless: bool = False,
        context_s: float | None = None,
        window_s: float | None = WINDOW_S,
        ahead_s: float | None = None,
        decoder: dict[str, int] | None = None,
        **overrides: Any,
    ) -> None:
        self.backbone, self.prompt, self.steers = backbone, prompt or None, list(steer)
        self.opts = GenerationOptions.build(options, **overrides)
        if self.opts.batch != 1:
            raise ValueError("a stream plays one sample: batch must be 1")
        names = [s.name for s in self.steers]
        if len(set(names)) != len(names):
            raise ValueError(f"each trait may be steered once in a stream, not {names}")
        self.controls = controls if controls is not None else Controls(names)
        self.endless, self.ahead_s = endless, ahead_s
        self.decoder_options = dict(decoder or {})
        fr, k = backbone.frame_rate, backbone.num_codebooks
        self._codes = torch.zeros(k, 0, dtype=torch.long)  # every finished window's frames (prompt first)
        if audio_prompt is not None:
            wave = audio_io.read(audio_prompt, backbone.sample_rate)
            self._codes = backbone.encode(wave[None])[0].cpu()
        self.prompt_frames = self._codes.shape[1]
        if endless:
            longest = max_seconds(backbone) if window_s is None else min(window_s, max_seconds(backbone))
            if context_s is None:  # the default, or half a window if that is less
                context_s = min(CONTEXT_S, longest / 2)
            self.window_s = longest
            self.context_frames = max(1, round(context_s * fr))
            if min(max_seconds(backbone, context_s), self.window_s - context_s) < 1.0:
                raise ValueError(
                    f"context_s {context_s:g} leaves {backbone.name} under 1 s to make per window"
                )
        else:
            self.window_s = max_seconds(backbone)
            check_request(backbone, self.steers, self.opts, self.prompt_frames / fr)
        self._settings = {s.name: (s.alpha, s.monitor, s.automation) for s in self.steers}  # stream-timed
        self._lock = threading.Lock()
        self._tick = threading.Event()
        self._ended = threading.Event()
        self._windows: list[_Window] = []
        self._error: BaseException | None = None
        self._chunks: list[np.ndarray] = []
        self.play_start: float | None = None  # when the first chunk was handed out
        self.started = 0.0
        self._thread = threading.Thread(target=self._work, name="smitin-stream", daemon=True)

    # -- the model's thread ----------------------------------------------------------------------
    def _work(self) -> None:
        try:
            window = 0
            while not self.controls.stopped:
                self._run_window(window)
                window += 1
                if not self.endless:
                    break
        except Cancelled:
            pass
        except BaseException as exc:  # handed to the listening thread
            self._error = exc
        finally:
            self._ended.set()
            self._tick.set()

    def _made(self) -> int:
        """Frames of new audio made so far (the running window's complete ones included)."""
        with self._lock:
            if not self._windows:
                return 0
            w = self._windows[-1]
            live = max(0, w.recorder.length - self.backbone.num_codebooks - w.prompt_frames)
            return w.offset + (w.frames if w.trace is not None else live)

    def _run_window(self, index: int) -> None:
        b, fr = self.backbone, self.backbone.frame_rate
        with self._lock:
            offset = self._codes.shape[1] - self.prompt_frames
            whole = index == 0 and not self.endless  # a set length continues all of its prompt
            context = self._codes if whole else self._codes[:, -self.context_frames :]
        prompt_frames = context.shape[1]
        if self.endless:  # up to the window's length of positions, the prompt included
            duration = min(max_seconds(b, prompt_frames / fr), self.window_s - prompt_frames / fr)
        else:
            duration = self.opts.duration
        start_s = offset / fr
        steers = []
        for s in self.steers:
            alpha, monitor, lane = self._settings[s.name]
            lane = lane.window(start_s, duration) if isinstance(lane, Lane) else None
            steers.append(replace(s, alpha=alpha, monitor=monitor, lane=lane))
        seed = self.opts.seed + index if self.opts.seed is not None else None
        opts = replace(self.opts, duration=duration, seed=seed)
        steps = max_new_tokens(b, duration)
        window = _Window(
            CodeRecorder(b, prompt_frames + steps + 8, cancel=self.controls.stop_event), prompt_frames, offset
        )
        slots = {s.name: i for i, s in enumerate(steers)}

        def on_start(state: Steering) -> None:
            state.go_live()
            window.state = state

        def tick(_past: int, _ids: object) -> None:
            self._tick.set()
            self._pace()

        with self._lock:
            self._windows.append(window)
        result: Result | None = None
        try:
            with (
                window.recorder.recording(),
                controlled(
                    b,
                    lambda: window.state,
                    [(self.controls, slots)],
                    offset=offset,
                    window=(start_s, duration),
                ),
                b.decoder_steps(tick),
                _no_final_decode(b),
            ):
                if prompt_frames:
                    result = continue_codes(
                        b, context, self.prompt, steer=steers, options=opts, progress=False, on_start=on_start
                    )
                else:
                    result = generate(
                        b, self.prompt, steer=steers, options=opts, progress=False, on_start=on_start
                    )
        except Cancelled:
            pass
        finally:
            new = (
                result.codes[0][:, prompt_frames:]
                if result is not None
                else window.recorder.frames()[:, prompt_frames:]
            )
            state = window.state
            trace = (
                result.trace
                if result is not None
                else (state.trace() if state is not None and state.rows_n else None)
            )
            if trace is None:
                trace = _empty_trace(b, steers)
            if state is not None:  # carry what the controls set into the next window (lanes stream-timed)
                for i, s in enumerate(steers):
                    lane = self.controls.lanes.get(s.name, self._settings[s.name][2])
                    self._settings[s.name] = (state.live_alpha[i], state.live_monitor[i], lane)
            with self._lock:
                self._codes = torch.cat([self._codes, new.cpu()], dim=1)
                window.frames, window.trace = new.shape[1], trace

    def _pace(self) -> None:
        """Hold the model while it is more than `ahead_s` ahead of a listener playing since the first chunk."""
        if self.ahead_s is None:
            return
        fr = self.backbone.frame_rate
        while not self.controls.stopped:
            start = self.play_start
            if start is not None and self._made() / fr - (time.perf_counter() - start) <= self.ahead_s:
                return
            if start is None and self._made() / fr <= self.ahead_s + 1.0:
                return  # before playback starts: make the first chunk and a little more
            time.sleep(0.005)

    # -- the listening thread --------------------------------------------------------------------
    def start(self) -> Stream:
        """Start the model (iterating starts it too)."""
        if not self._thread.is_alive() and not self._ended.is_set() and not self.started:
            self.started = time.perf_counter()
            self._thread.start()
        return self

    def __iter__(self) -> Iterator[Chunk]:
        self.start()
        b = self.backbone
        decoder = ChunkDecoder(b, **self.decoder_options)
        decoder.done = self.prompt_frames
        seen_changes = 0
        try:
            while True:
                ended = self._ended.is_set()
                if not ended and not decoder.ready(self.prompt_frames + self._made()):
                    self._tick.wait(POLL_S)  # not enough new frames yet: no need to gather the codes
                    self._tick.clear()
                    continue
                audio = decoder.push(self.codes(with_prompt=True), final=ended)
                if audio is None:
                    if ended:
                        break
                    self._tick.wait(POLL_S)
                    self._tick.clear()
                    continue
                changes = self.changes()
                chunk = Chunk(
                    audio,
                    (decoder.done - self.prompt_frames) / b.frame_rate - len(audio) / b.sample_rate,
                    b.sample_rate,
                    self._made() / b.frame_rate,
                    changes[seen_changes:],
                    time.perf_counter(),
                )
                seen_changes = len(changes)
                self._chunks.append(audio)
                if self.play_start is None:
                    self.play_start = chunk.at
                yield chunk
        finally:  # left early (break, closed generator): stop the model and keep what was made
            if not self._ended.is_set():
                self.controls.stop()
            self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """End the stream at the model's next step; iteration then hands out the rest and ends."""
        self.controls.stop()

    @property
    def done(self) -> bool:
        return self._ended.is_set()

    # -- what it made ----------------------------------------------------------------------------
    def codes(self, with_prompt: bool = False) -> torch.Tensor:
        """[K, frames] complete so far: the finished windows' and the running one's complete frames."""
        with self._lock:
            done = self._codes
            running = self._windows[-1] if self._windows and self._windows[-1].trace is None else None
            live = running.recorder.frames()[:, running.prompt_frames :] if running is not None else None
        out = torch.cat([done, live], dim=1) if live is not None else done
        return out if with_prompt else out[:, self.prompt_frames :]

    def changes(self) -> list[dict[str, Any]]:
        """Every control change applied so far, timed in the stream (step = new frame, time in s)."""
        return [
            {**c, "step": c["stream_step"], "time": c["stream_time"], "window_step": c["step"]}
            for c in self.controls.applied
        ]

    def trace(self) -> Trace | None:
        """The stream's trace so far: its windows' traces one after another, with the changes."""
        with self._lock:
            windows = list(self._windows)
        parts = []
        for w in windows:
            trace = w.trace
            if trace is None and w.state is not None and w.state.rows_n is not None:
                trace = w.state.trace()
            if trace is not None and len(trace.c):  # a window that has not run a step yet adds nothing
                parts.append(trace if w.trace is None else _cut(trace, w.frames))
        if not parts:
            return None
        first = parts[0]
        return Trace(
            traits=first.traits,
            frame_rate=first.frame_rate,
            c=torch.cat([p.c for p in parts]),
            g=torch.cat([p.g for p in parts]),
            edited=torch.cat([p.edited for p in parts]),
            settings={**first.settings, **self._stream_settings(len(windows))},
            want=torch.cat([p.want for p in parts]) if all(p.want is not None for p in parts) else None,  # type: ignore[misc]
            changes=self.changes(),
        )

    def _stream_settings(self, windows: int) -> dict[str, Any]:
        return {
            "stream": {
                "endless": self.endless,
                "windows": windows,
                "stopped": self.controls.stopped,
                "ahead_s": self.ahead_s,
                "chunk": {
                    "chunk": self.decoder_options.get("chunk"),
                    "context": self.decoder_options.get("context"),
                    "lookahead": self.decoder_options.get("lookahead"),
                    "fade": self.decoder_options.get("fade"),
                },
            },
            "duration": round(self.codes().shape[1] / self.backbone.frame_rate, 4),
            "seed": self.opts.seed,
        }

    @property
    def audio(self) -> np.ndarray:
        """The audio handed out so far, joined (mono float32)."""
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)

    def result(self) -> Result:
        """What was made (after the stream ended): the streamed audio (or, if nobody iterated it, the
        whole-clip decode), its new codes and the trace."""
        if not self._ended.is_set():
            raise RuntimeError("the stream is still running: iterate it to the end, or stop it first")
        if self._error is not None:
            raise self._error
        trace = self.trace() or _empty_trace(self.backbone, self.steers)
        codes = self.codes()
        audio = self.audio
        if not self._chunks and codes.shape[-1]:  # started but never iterated: decode it whole
            audio = self.backbone.decode(self.codes(with_prompt=True)[None])[0].numpy()
            audio = audio[self.prompt_frames * round(self.backbone.sample_rate / self.backbone.frame_rate) :]
        return Result(audio[None], self.backbone.sample_rate, codes[None], trace)


def stream(
    backbone: Backbone,
    prompt: str | None = None,
    steer: Sequence[Steer] = (),
    **kwargs: Any,
) -> Stream:
    """A streaming generation: iterate the returned `Stream` for audio `Chunk`s (see `Stream`).

    Keywords: options (or any `GenerationOptions` field: duration, seed, guidance_scale...),
    controls (a `Controls` to change the traits while it plays), audio_prompt (a file to
    continue), endless, context_s, window_s, ahead_s, decoder (`ChunkDecoder` sizes: chunk, context,
    lookahead, fade).
    """
    return Stream(backbone, prompt, steer, **kwargs)


def _cut(trace: Trace, steps: int) -> Trace:
    """A window's trace cut to its new frames (its last K - 1 steps only finish the delay pattern)."""
    return replace(
        trace,
        c=trace.c[:steps],
        g=trace.g[:steps],
        edited=trace.edited[:steps],
        want=trace.want[:steps] if trace.want is not None else None,
    )


def _empty_trace(backbone: Backbone, steers: Sequence[Steer]) -> Trace:
    t = len(steers)
    return Trace(
        traits=[s.name for s in steers],
        frame_rate=backbone.frame_rate,
        c=torch.zeros(0, 1, t),
        g=torch.zeros(0, 1, t),
        edited=torch.zeros(0, dtype=torch.bool),
        want=torch.zeros(0, t, dtype=torch.int8),
    )
