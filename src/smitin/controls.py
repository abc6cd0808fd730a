"""A hand on the controls while the model plays: changes to a run's traits, applied at its next step.

A `Controls` is one request's mailbox: any thread (a slider's handler, a script) posts a change
of a trait's strength, its monitor or its lane; the model's thread takes the changes in a
`decoder_steps` hook before the next step and hands them to the live `Steering`
(`Steering.change`), which lays the trait out again from that step on and records the change in
the trace. Because the change is written into the same per-step tensors a lane laid out before
the run fills, a change made at step s gives exactly the codes of a run whose lane schedules it
at step s from the start (same seed): tests/test_stream.py checks it.

Several requests of one batch each have their own `Controls`, bound to their own trait slots of
the batch's `Steering`: one user's hand never reaches another's music.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .backbone import Backbone
from .lanes import Lane
from .recipes import check_alpha
from .steering import Steering

KEEP = "keep"  # a change that leaves the lane as it is


@dataclass(frozen=True)
class Change:
    """One change of one trait: its strength (alpha), its monitor on/off, or its lane (None: none)."""

    trait: str
    alpha: float | None = None
    monitor: bool | None = None
    lane: Lane | None | str = KEEP


class Controls:
    """One request's live controls: post changes from any thread; they apply at the next step.

    `traits` (optional) are the request's trait names: a change of another trait is refused at
    once with a ValueError. `applied` lists every change applied so far (as the trace records
    it); `stop()` asks the run to end at its next step (`stopped` says whether it was asked).
    """

    def __init__(self, traits: Sequence[str] | None = None) -> None:
        self.traits = list(traits) if traits is not None else None
        self.applied: list[dict[str, Any]] = []
        self.lanes: dict[str, Lane | None] = {}  # the last lane applied per trait, as given
        self.stop_event = threading.Event()
        self._pending: list[Change] = []
        self._lock = threading.Lock()

    def _post(self, change: Change) -> None:
        if self.traits is not None and change.trait not in self.traits:
            have = ", ".join(self.traits) or "none"
            raise ValueError(f"no trait {change.trait!r} in this run (its traits: {have})")
        with self._lock:
            self._pending.append(change)

    def set_strength(self, trait: str, alpha: float) -> None:
        """Push `trait` with `alpha` from the next step on (< 0 removes it, 0 leaves it alone).

        The bounds of a strength given before the run (`check_alpha`: finite, at most 100 either
        way) hold here too: a ValueError, and the run goes on as it was."""
        self._post(Change(trait, alpha=check_alpha(alpha)))

    def set_monitor(self, trait: str, on: bool) -> None:
        """Self-monitoring of `trait` on (SMITIN) or off (plain ITI) from the next step on."""
        self._post(Change(trait, monitor=bool(on)))

    def set_lane(self, trait: str, lane: Lane | str | None) -> None:
        """`trait` follows `lane` (times in seconds of the run's new audio) from the next step on; None: no lane."""
        self._post(Change(trait, lane=Lane.of(lane) if lane is not None else None))

    def stop(self) -> None:
        """End the run at its next step; what was made is kept."""
        self.stop_event.set()

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def take(self) -> list[Change]:
        """The changes posted since the last take, oldest first."""
        with self._lock:
            out, self._pending = self._pending, []
        return out

    def apply(
        self,
        state: Steering,
        step: int,
        slots: Mapping[str, int],
        window: tuple[float, float] | None = None,
    ) -> list[dict[str, Any]]:
        """Apply the pending changes to `state` from `step` on; `slots` maps trait -> column of `state`.

        `window` (start, length in seconds): the run is that part of a longer stream, whose time
        the lanes are given in.
        """
        records: list[dict[str, Any]] = []
        for change in self.take():
            slot = slots.get(change.trait)
            if slot is None:  # posted before the traits were known, for a trait the run does not have
                continue
            lane = change.lane
            if isinstance(lane, Lane):
                self.lanes[change.trait] = lane
                lane = lane.window(*window) if window is not None else lane
            elif lane is None:
                self.lanes[change.trait] = None
            made = state.change(step, slot, alpha=change.alpha, monitor=change.monitor, lane=lane)
            for record in made:
                record["wall"] = round(time.time(), 3)  # when it took effect (Unix time), for latency
            records += made
        self.applied += records
        return records


@contextmanager
def controlled(
    backbone: Backbone,
    state: Callable[[], Steering | None],
    controls: Sequence[tuple[Controls, Mapping[str, int]]],
    offset: int = 0,
    window: tuple[float, float] | None = None,
) -> Iterator[None]:
    """Apply each (controls, trait slots) pair's changes before every decoder step of the runs inside.

    `state()` gives the live `Steering` (None before the run starts); `offset` is added to the
    steps the applied changes report (a stream's earlier windows), not to where they apply;
    `window` (start, length in seconds) places the run in the stream's time, which lanes use.
    """

    def hook(past: int, _ids: object) -> None:
        live = state()
        if live is None or live.first is None or past == 0:  # a prefill: nothing to change yet
            return
        step = past - live.first
        for box, slots in controls:
            if box.pending:
                for record in box.apply(live, step, slots, window):
                    record["stream_step"] = step + offset
                    record["stream_time"] = round((step + offset) / backbone.frame_rate, 4)

    with backbone.decoder_steps(hook):
        yield
