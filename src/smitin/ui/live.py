"""Generation with a live view: run exactly as the engine does, in a worker thread, and watch it.

The engine is not changed: `run_generation` calls `generate`/`continue_audio` (and a `Batcher`
calls `generate_mixed`), handing the live `Steering` state to a callback, so the watching thread
can read its buffers (c, g, edited) for the monitor plot while a `CodeRecorder` keeps the tokens
fed to the decoder for the live stream (`smitin.chunked` decodes them). `LiveRun` puts the three together: one generation in a
worker thread that can be watched and stopped. Many users on one model: `smitin.ui.batcher`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..backbone import Backbone
from ..generate import Result, continue_audio, generate, max_new_tokens
from ..monitor import Trace
from ..options import GenerationOptions
from ..recorder import Cancelled, CodeRecorder
from ..steering import Steer, Steering

__all__ = [
    "Cancelled",
    "CodeRecorder",
    "LiveRun",
    "Request",
    "live_trace",
    "run_generation",
]

SPARE_POSITIONS = 4096  # recorder room past the new tokens: an audio prompt's positions


@dataclass
class Request:
    """Everything one generation needs besides the model and the steers."""

    prompt: str = ""
    audio_prompt: str | None = None
    options: GenerationOptions = field(default_factory=GenerationOptions)


def run_generation(
    backbone: Backbone,
    steers: Sequence[Steer],
    request: Request,
    on_start: Callable[[Steering], None] = lambda _state: None,
) -> Result:
    """Generate exactly as `smitin.generate`/`continue_audio`, handing the live state to `on_start`."""
    prompt = request.prompt or None
    if request.audio_prompt:
        result = continue_audio(
            backbone,
            request.audio_prompt,
            prompt=prompt,
            steer=steers,
            options=request.options,
            progress=False,
            on_start=on_start,
        )
        result.trace.settings["audio_prompt"] = Path(request.audio_prompt).name
        return result
    return generate(
        backbone, prompt, steer=steers, options=request.options, progress=False, on_start=on_start
    )


def live_trace(state: Steering | None) -> Trace | None:
    """The trace so far (None before the first step); safe to call while the model runs."""
    if state is None or state.rows_n is None or not state.steers:
        return None
    return state.trace()


class Outcome:
    """What a run ended with: `result()` gives its Result, or raises what it raised."""

    _result: Result | None = None
    _error: BaseException | None = None

    @property
    def finished(self) -> Result | None:
        """The Result if the run finished well, else None (still running, failed or stopped)."""
        return self._result

    def result(self) -> Result:
        """The finished run's Result (call after it ended); re-raises the run's error (Cancelled if stopped)."""
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise RuntimeError("the run has not finished")
        return self._result


class LiveRun(Outcome):
    """One generation in a worker thread, watched from the thread that started it.

    While it runs, `steps`, `trace()` and `frames()` read the live state; `stop()` cancels it at
    its next step and waits until the worker has left the model (its hooks removed); `result()`
    gives the Result, or raises what the worker raised.
    """

    def __init__(
        self, backbone: Backbone, steers: Sequence[Steer], request: Request, name: str = "run"
    ) -> None:
        self.backbone, self.steers, self.request = backbone, list(steers), request
        self.total_steps = max_new_tokens(backbone, request.options.duration)
        self.recorder = CodeRecorder(backbone, self.total_steps + SPARE_POSITIONS)
        self.state: Steering | None = None
        self.started = 0.0
        self._thread = threading.Thread(target=self._work, name=f"smitin-ui-{name}", daemon=True)

    def _work(self) -> None:
        try:
            with self.recorder.recording():
                self._result = run_generation(self.backbone, self.steers, self.request, self._on_start)
        except BaseException as exc:  # handed to the watching thread by result()
            self._error = exc

    def _on_start(self, state: Steering) -> None:
        self.state = state

    def start(self) -> LiveRun:
        self.started = time.perf_counter()
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the run ends or `timeout` seconds have passed."""
        self._thread.join(timeout)

    @property
    def steps(self) -> int:
        """Decoder steps taken so far (0 before the first)."""
        state = self.state
        return state.steps_seen if state is not None and state.rows_n is not None else 0

    def trace(self) -> Trace | None:
        return live_trace(self.state)

    def frames(self) -> torch.Tensor:
        return self.recorder.frames()

    def stop(self) -> None:
        """End a run that is still going (at its next step) and wait for the worker to leave."""
        if self._thread.is_alive():
            self.recorder.cancel.set()
            self._thread.join()


# -- many users, one model: requests batched as they arrive -----------------------------------
