"""Cached defaults for running offline with no arguments: a rendered stem set and drum probes.

`smitin demo` and `smitin ui` both need probes for the bundled model and nobody to hand them
any; they are trained once from a small rendered stem set and reused, named by the model's head
layout and weights so a retrained model gets fresh ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .backbone import Backbone

DEFAULT_TRAIT = "drums"


def cache_dir() -> Path:
    """Where rendered stems and probe files live: $SMITIN_CACHE or ~/.cache/smitin."""
    env = os.environ.get("SMITIN_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "smitin"


def model_key(backbone: Backbone) -> str:
    """Names files by head layout and weights, so a retrained bundled model gets fresh probes."""
    return f"{backbone.layout.fingerprint()}-{backbone.weights_digest()}"


PROBE_FORMAT = 2  # 2: files hold the steering directions (fit_cached also retrains files missing one); older files are retrained


def default_probe_path(backbone: Backbone, cache: Path | None = None, trait: str = DEFAULT_TRAIT) -> Path:
    return (cache or cache_dir()) / "probes" / f"{trait}-{model_key(backbone)}-p{PROBE_FORMAT}.safetensors"


def train_default_probes(
    backbone: Backbone,
    cache: Path | None = None,
    *,
    trait: str = DEFAULT_TRAIT,
    songs: int = 12,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Probes for `trait` on `backbone`, trained once from rendered stems; later calls reuse the file.

    Several smitin processes starting at once (studios, demos) share one cache: a lock in it lets
    the first render the stems and train while the others wait, then reuse the file (instead of
    all rendering into one folder at once).
    """
    path = default_probe_path(backbone, cache, trait)
    if path.is_file():
        return path
    from filelock import FileLock, Timeout

    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    lock = FileLock(cache / "default-probes.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"another smitin is training the default probes in {cache}; waiting for it to finish")
        lock.acquire()
    try:
        if not path.is_file():
            _train(backbone, cache, path, trait, songs, progress, log)
    finally:
        lock.release()
    return path


def _train(backbone, cache: Path, path: Path, trait: str, songs: int, progress: bool, log) -> None:
    from . import data, synth
    from .probes import fit_cached

    stems = cache / f"stems-{backbone.sample_rate}"
    log(f"first run: rendering {songs} songs into {stems} to train {trait} probes (once)")
    synth.render_dataset(stems, songs=songs, seed=0, sample_rate=backbone.sample_rate, progress=progress)
    segments = data.stem_segments(stems, trait, sample_rate=backbone.sample_rate)
    log(f"training {trait} probes on {len(segments)} segments")
    fit_cached(
        backbone,
        segments,
        path,
        cache_dir=cache / "activations" / f"{trait}-{model_key(backbone)}",
        progress=progress,
    )
    log(f"wrote {path}")
