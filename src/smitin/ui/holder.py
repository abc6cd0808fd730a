"""What the studio keeps for all its users: the one model in memory and the downloads folder.

`ModelHolder` holds the loaded model and the `Batcher` that runs everyone's generations on it;
`Downloads` keeps each generation's WAV and trace files in one temporary folder for the app.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import weakref
from pathlib import Path

from ..backbone import BUNDLED, Backbone, load
from .batcher import BATCH_WINDOW_S, Batcher

KEEP_GENERATIONS = 8  # generations whose files stay on disk; Gradio serves its own copy of each


class ModelHolder:
    """Holds one loaded model for all sessions; a request for another swaps it.

    `busy` is held by whoever runs the model (a batch of generations, training). It is a plain
    Lock, not an RLock: Gradio may resume a generator handler on another thread, and a plain Lock
    may be released from any thread. `batcher` runs the generations, in batches of the requests
    that arrive within `batch_window_s` of each other or while the model is busy, with decoder
    steps run by `engine` (`smitin.captured`).
    """

    def __init__(
        self,
        device: str = "cpu",
        dtype: str | None = None,
        batch_window_s: float = BATCH_WINDOW_S,
        engine: str = "auto",
    ) -> None:
        self.device, self.dtype = device, dtype
        self.engine = engine  # how every generation's decoder steps run (`smitin ui --engine`)
        self.lock = threading.Lock()  # guards loading
        self.busy = threading.Lock()  # guards use
        self.name: str | None = None
        self.backbone: Backbone | None = None
        self.batcher = Batcher(self.busy, window_s=batch_window_s)

    def loaded(self, name: str) -> Backbone | None:
        """The model if `name` is the one in memory (no wait on a running batch), else None."""
        name = (name or BUNDLED).strip() or BUNDLED
        with self.lock:
            return self.backbone if self.name == name else None

    def get(self, name: str) -> Backbone:
        name = (name or BUNDLED).strip() or BUNDLED
        with self.lock:
            if self.backbone is None or self.name != name:
                self.backbone = None  # free the old one before loading the next
                self.backbone = load(name, device=self.device, dtype=self.dtype)
                self.name = name
            return self.backbone


class Downloads:
    """One temporary folder for the WAV and trace files of every generation in this app.

    Each generation writes into a numbered sub-folder (`0001/steered.wav`), so two sessions never
    overwrite each other's files, and only the newest `keep` generations stay on disk. The folder
    (`smitin-ui-*` in the system's temporary folder) is made on first use and removed by `close`,
    when this object is garbage-collected, or at interpreter exit.
    """

    def __init__(self, keep: int = KEEP_GENERATIONS) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self.root: Path | None = None
        self._count = 0
        self._lock = threading.Lock()
        self._cleanup: weakref.finalize | None = None

    def new(self) -> Path:
        """A fresh, empty folder for one generation's files; older generations beyond `keep` go."""
        with self._lock:
            if self.root is None or not self.root.is_dir():
                self.root = Path(tempfile.mkdtemp(prefix="smitin-ui-"))
                self._cleanup = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)
            self._count += 1
            folder = self.root / f"{self._count:04d}"
            folder.mkdir()
            for old in self.root.iterdir():
                if old.name.isdigit() and int(old.name) <= self._count - self.keep:
                    shutil.rmtree(old, ignore_errors=True)
            return folder

    def close(self) -> None:
        """Remove the folder and everything in it (a later `new` makes another)."""
        with self._lock:
            if self._cleanup is not None:
                self._cleanup()
            self.root, self._cleanup = None, None
