"""The tokens a generation feeds its decoder, recorded step by step, and a way to stop it.

`generate` hands back codes only at the end; a live view (the studio's plot, a stream's audio)
needs them while the model runs. `CodeRecorder` keeps them from a `decoder_steps` hook and undoes
the delay pattern; setting its `cancel` event stops the generation at its next step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .backbone import Backbone


class Cancelled(Exception):
    """Raised inside the model's forward pass to stop a generation nobody waits for any more."""


class CodeRecorder:
    """Records the tokens fed to the decoder at each step and undoes the delay pattern.

    Step inputs are the previous step's samples, so `frames()` lags one step behind; enough for
    a preview. The conditional rows of the first `samples` samples are kept. Setting `cancel` (an
    event that may be shared by several recorders) stops the generation at its next step (the
    engine's context managers then remove their hooks).
    """

    def __init__(
        self, backbone: Backbone, capacity: int, samples: int = 1, cancel: threading.Event | None = None
    ) -> None:
        self.k = backbone.num_codebooks
        self.ids = torch.full((samples * self.k, capacity), -1, dtype=torch.long)
        self.length = 0
        self.forwards = 0  # decoder forwards of the current generation (its prefill included)
        self.cancel = cancel if cancel is not None else threading.Event()
        self._backbone = backbone

    @contextmanager
    def recording(self) -> Iterator[CodeRecorder]:
        rows = self.ids.shape[0]

        def hook(past: int, ids: torch.Tensor | None) -> None:
            if self.cancel.is_set():
                raise Cancelled("generation stopped")
            if past == 0:
                self.length, self.forwards = 0, 0  # a new generation starts
            self.forwards += 1
            if ids is None:
                return
            end = min(past + ids.shape[1], self.ids.shape[1])
            if end > past:
                self.ids[:, past:end] = ids[:rows, : end - past].detach().cpu()
                self.length = max(self.length, end)

        with self._backbone.decoder_steps(hook):
            yield self

    def frames(self, sample: int = 0) -> torch.Tensor:
        """Codes [K, frames] complete so far: codebook k of frame f sits at position f + 1 + k."""
        n = max(0, self.length - self.k)
        first = sample * self.k
        return torch.stack([self.ids[first + k, 1 + k : 1 + k + n] for k in range(self.k)])
