"""Head activations z[l, h] from teacher-forced passes, and a resumable on-disk cache of them.

A segment's EnCodec codes are fed in MusicGen's delay pattern under the null text condition (what
CFG's unconditional rows see; a text can be given instead) and the input of every self-attention
`out_proj` is read at the last position(s): the last position is exactly step 0 of a continuation
of that segment, i.e. what the monitor reads when generation starts from it. `noise_response`
reads the heads the same way on trait-free segments with white noise added.
About 450 lines: the shard cache and its locks live beside the extraction they serve.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import warnings
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .backbone import Backbone
from .data.errors import DataError
from .distributed import World, barrier, rounds
from .version import __version__

MANIFEST = "manifest.json"


class SegmentSource(Protocol):
    """What extraction needs from a dataset (smitin.data.SegmentSet provides it)."""

    trait: str
    sample_rate: int
    seconds: float

    def __len__(self) -> int: ...
    def load(self, indices) -> np.ndarray: ...
    def fingerprint(self) -> str: ...
    def labels(self) -> np.ndarray: ...
    def groups(self) -> list[str]: ...


@dataclass
class Activations:
    """z [N, S, L, H, D] for N segments at S positions each, with labels and track ids."""

    z: torch.Tensor
    labels: np.ndarray
    groups: list[str]
    info: dict

    def flat(self) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """One sample per (segment, position): z [N*S, L, H, D], labels, groups."""
        n, s = self.z.shape[:2]
        return self.z.reshape(n * s, *self.z.shape[2:]), np.repeat(self.labels, s), np.repeat(self.groups, s)


@torch.no_grad()
def capture(
    backbone: Backbone,
    codes: torch.Tensor,
    *,
    last: int = 1,
    condition: dict | None = None,
) -> torch.Tensor:
    """Teacher-forced pass over codes [B, K, T] -> z [B, last, L, H, D] (one forward, all heads)."""
    b = codes.shape[0]
    lay = backbone.layout
    out = torch.empty(
        b, last, lay.layers, lay.heads, lay.head_dim, dtype=backbone.dtype, device=backbone.device
    )

    def read(layer: int, x: torch.Tensor) -> None:
        out[:, :, layer] = x[:, -last:].unflatten(-1, (lay.heads, lay.head_dim))

    ids = backbone.delayed_input_ids(codes.to(backbone.device))
    cond = condition if condition is not None else backbone.null_condition(b)
    with backbone.head_hooks(read):
        backbone.model(**cond, decoder_input_ids=ids, use_cache=False)
    return out


def read_heads(
    backbone: Backbone, audio: np.ndarray, *, last: int = 1, condition: dict | None = None
) -> torch.Tensor:
    """[N, S] clips -> z [N, last, L, H, D] on the model's device: encoded by the model's codec and
    read by `capture` under `condition` (`backbone.condition(texts)`; None: the null condition).
    What extraction, the noise response and the diagnosis all read."""
    codes = backbone.encode(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)))
    return capture(backbone, codes, last=last, condition=condition)


NOISE_LEVEL = 0.3  # white noise added for `noise_response`, x each clip's RMS (about a stem's share)
NOISE_CLIPS = 32  # clips without the trait it reads (two passes each: a second or two on a CPU)


class NoiseResponse(NamedTuple):
    """How the heads answer broadband noise: `unit` [L, H, D] per head, the mean `shift` itself,
    and how many trait-free segments it was read on (0: none; then both are zeros)."""

    unit: torch.Tensor
    segments: int
    shift: torch.Tensor


def noise_response(
    backbone: Backbone,
    segments: SegmentSource,
    *,
    count: int = NOISE_CLIPS,
    level: float = NOISE_LEVEL,
    last: int = 1,
    text: str | None = None,
    seed: int = 0,
    batch_size: int = 8,
) -> NoiseResponse:
    """How every head answers broadband noise: per head, the mean shift [L, H, D] (float32, CPU; and
    its unit vector) that white noise at `level` x the clip's RMS causes, read as the probes read
    (last positions), on up to `count` segments without the trait; and how many segments it read.

    Noise raises a trait's push direction more than the trait itself does (docs/diagnosis.md), so
    a push along it asks the model for noise; the `denoised` direction has this part removed.
    """
    labels = np.asarray(segments.labels())
    negatives = np.flatnonzero(labels == 0)
    lay = backbone.layout
    total = torch.zeros(lay.layers, lay.heads, lay.head_dim, dtype=torch.float64)
    if not len(negatives):
        return NoiseResponse(total.float(), 0, total.float())
    pick = negatives[np.linspace(0, len(negatives) - 1, min(count, len(negatives))).round().astype(int)]
    pick = np.unique(pick)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for i in range(0, len(pick), batch_size):
            idx = pick[i : i + batch_size].tolist()
            clean = np.ascontiguousarray(segments.load(idx), dtype=np.float32)
            rms = np.sqrt((clean.astype(np.float64) ** 2).mean(-1, keepdims=True))
            noisy = (clean + level * rms * rng.standard_normal(clean.shape)).astype(np.float32)
            cond = backbone.condition([text or ""] * len(idx))  # once for both passes
            z = [read_heads(backbone, a, last=last, condition=cond).double().cpu() for a in (clean, noisy)]
            total += (z[1] - z[0]).sum((0, 1))
    shift = total / (len(pick) * last)
    unit = shift / shift.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return NoiseResponse(unit.float(), len(pick), shift.float())


def extract(
    backbone: Backbone,
    segments: SegmentSource,
    *,
    batch_size: int = 8,
    last: int = 1,
    text: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Activations:
    """Activations for every segment, batch by batch.

    With `cache_dir`, each batch is written as an fp16 shard as soon as it is done, so memory stays
    flat while extracting and a killed run resumes where it stopped. Each set of inputs (model,
    data, settings) has its own subfolder of `cache_dir`, locked while it is worked on: runs with
    other inputs never share a shard, and two runs with the same inputs compute it once (the
    second waits for the first, then reads its shards). See :class:`ShardCache`.
    """
    if backbone.sample_rate != segments.sample_rate:
        raise ValueError(
            f"segments are at {segments.sample_rate} Hz but {backbone.name} needs {backbone.sample_rate} Hz; "
            "build the segment set with sample_rate=backbone.sample_rate"
        )
    if batch_size < 1 or last < 1:
        raise ValueError(f"batch_size ({batch_size}) and last ({last}) must be at least 1")
    n = len(segments)
    if n == 0:
        raise ValueError("no segments to extract: check the data folder and the trait name")
    key = _key(backbone, segments, batch_size=batch_size, last=last, text=text)
    shards: list[torch.Tensor] = []
    bar = tqdm(total=n, desc="activations", unit="seg", disable=not progress)
    with ShardCache(cache_dir, key) if cache_dir is not None else nullcontext() as cache:
        for i, start in enumerate(range(0, n, batch_size)):
            idx = list(range(start, min(start + batch_size, n)))
            shards.append(_batch(backbone, segments, cache, i, idx, last, text))
            bar.update(len(idx))
    bar.close()
    info = {**key, "segments": n, "smitin": __version__}
    return Activations(torch.cat(shards), np.asarray(segments.labels()), list(segments.groups()), info)


def _key(backbone: Backbone, segments: SegmentSource, **settings) -> dict:
    """What a set of shards was computed from: model, weights, data and the extraction settings."""
    return {
        "model": backbone.name,
        "layout": backbone.layout.fingerprint(),
        "weights": backbone.weights_digest(),
        "data": segments.fingerprint(),
        "last": settings["last"],
        "text": settings["text"],
        "batch_size": settings["batch_size"],
    }


def _batch(backbone, segments, cache, i: int, idx: list[int], last: int, text: str | None) -> torch.Tensor:
    """Batch `i` (segments `idx`): from the cache if it holds it, else computed (and cached)."""
    lay = backbone.layout
    shape = (len(idx), last, lay.layers, lay.heads, lay.head_dim)
    z = cache.get(i, shape) if cache else None
    if z is None:
        cond = backbone.condition([text or ""] * len(idx))
        z = read_heads(backbone, segments.load(idx), last=last, condition=cond).to("cpu", torch.float16)
        if cache and bool(torch.isfinite(z).all()):  # a NaN batch is not kept: a rerun computes it again
            cache.put(i, z)
    return z


def extract_share(
    backbone: Backbone,
    segments: SegmentSource,
    world: World,
    *,
    cache_dir: str | Path,
    batch_size: int = 8,
    last: int = 1,
    text: str | None = None,
    progress: bool = True,
) -> None:
    """This rank's part of a data-parallel extraction into a cache folder every rank can reach.

    Batch b goes to rank b % world size. Rank 0 takes the key's lock and prepares its folder, the
    others write their shards into it (each shard atomically), and all wait for each other; then
    `extract` on rank 0 finds every shard and reads them, so the activations (and probes trained
    on them) are the same tensors as a one-process run's: every batch holds the same segments.
    """
    n = len(segments)
    key = _key(backbone, segments, batch_size=batch_size, last=last, text=text)
    with ExitStack() as stack:
        if not world.main:
            barrier(world)  # rank 0 holds the lock and has prepared the key's folder
        cache = stack.enter_context(ShardCache(cache_dir, key, peer=not world.main))
        if world.main:
            barrier(world)
        bar = tqdm(total=n, desc="activations (all ranks)", unit="seg", disable=not (progress and world.main))
        for b, idx, done in rounds(world, n, batch_size):
            _batch(backbone, segments, cache, b, idx, last, text)
            bar.update(done - bar.n)
        bar.close()
        barrier(world)  # every shard is written before rank 0 lets go of the lock


def key_digest(key: dict) -> str:
    """Short hash naming a cache key's folder."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


class CacheBusyError(DataError):
    """Another process held a cache key's lock for longer than we were asked to wait."""


class ShardCache:
    """Numbered fp16 shards in one folder per key, `root/<hash of key>/`, with a manifest and a lock.

    Use it as a context manager: entering takes the key's lock (`root/<hash>.lock`, an OS file
    lock that a killed process drops at once), waiting for another process that holds it, so one
    key's shards are written by one process at a time and a second one reuses them. Shards are
    written under a temporary name and renamed, each tagged with its key's hash, its index and the
    SHA-256 of its content; a shard that cannot be read or does not fit (another key, index,
    shape or dtype, a content that does not match its digest, NaN: made by hand, moved, damaged or
    written by an older smitin) is recomputed with a warning. Entering also removes the folders of other keys that
    no process is using, so a cache folder holds one set of inputs at rest, as before.
    """

    def __init__(
        self, root: str | Path, key: dict, *, timeout: float | None = None, peer: bool = False
    ) -> None:
        self.peer = peer  # another rank of this run holds the lock and prepared the folder
        self.root = Path(root)
        self.key = key
        self.digest = key_digest(key)
        self.dir = self.root / self.digest
        self.timeout = timeout  # seconds to wait for another process; None: as long as it takes
        self._lock: FileLock | None = None

    # -- lifetime --------------------------------------------------------------------------------
    def __enter__(self) -> ShardCache:
        if self.peer:
            if _read_manifest(self.dir / MANIFEST) is None:
                raise CacheBusyError(f"{self.dir}: rank 0 has not prepared this cache folder; is it shared?")
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = _acquire(self.root / f"{self.digest}.lock", self.dir, self.timeout)
        try:
            self._prepare()
            self._prune()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _prepare(self) -> None:
        """The key's folder with its manifest; leftovers of a killed run and foreign shards are dropped."""
        self.dir.mkdir(exist_ok=True)
        for tmp in self.dir.glob("*.tmp"):  # a write cut short by a kill (we hold the lock)
            tmp.unlink(missing_ok=True)
        manifest = self.dir / MANIFEST
        old = _read_manifest(manifest)
        if old is not None and old.get("key") == self.key:
            return
        if old is not None or any(self.dir.glob(SHARDS)):
            warnings.warn(
                f"{self.dir}: cached activations were made from other inputs; recomputing", stacklevel=4
            )
            for f in self.dir.glob(SHARDS):
                f.unlink()
        _atomic_write(manifest, json.dumps({"key": self.key, "smitin": __version__}, indent=1).encode())

    def _prune(self) -> None:
        """Remove other keys' folders that no process holds, and shards of the pre-0.3 flat layout."""
        dropped = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and p != self.dir):
            if _read_manifest(folder / MANIFEST) is None:
                continue  # not a key folder of ours: leave it alone
            lock = FileLock(self.root / f"{folder.name}.lock")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # in use by another process right now
            try:
                shutil.rmtree(folder, ignore_errors=True)
                dropped.append(folder.name)
            finally:
                lock.release()
        flat = self.root / MANIFEST
        if _read_manifest(flat) is not None:  # the layout before one folder per key
            for f in self.root.glob(SHARDS):
                f.unlink(missing_ok=True)
            flat.unlink(missing_ok=True)
            dropped.append("(flat layout of an older smitin)")
        if dropped:
            warnings.warn(
                f"{self.root}: removed cached activations made from other inputs: {', '.join(dropped)}",
                stacklevel=4,
            )

    # -- shards ----------------------------------------------------------------------------------
    def _path(self, i: int) -> Path:
        return self.dir / f"shard-{i:06d}.safetensors"

    def get(self, i: int, shape: tuple[int, ...] | None = None) -> torch.Tensor | None:
        """Shard `i` if it is there, readable and fits (this key, this index, `shape`, fp16, finite,
        and its content matches the SHA-256 in its tag); else None, with a warning, and removed.

        The digest catches a shard swapped with another of the same folder (same key and shape:
        silently wrong probes before) and one damaged in place; such a shard is recomputed, and
        never blamed on the stems."""
        path = self._path(i)
        if not path.exists():
            return None
        try:
            with safe_open(path, framework="pt") as f:
                tag = f.metadata() or {}
                names = set(f.keys())
                z = f.get_tensor("z") if names == {"z"} else None
        except (SafetensorError, OSError, RuntimeError) as err:
            problem = f"unreadable ({err})"
        else:
            if z is None:
                problem = f"holds {sorted(names)}, not one tensor 'z'"
            elif tag.get("key") != self.digest:
                problem = f"made for other inputs (key {tag.get('key')}, not {self.digest})"
            elif z.dtype != torch.float16 or (shape is not None and tuple(z.shape) != tuple(shape)):
                problem = f"is {z.dtype} {tuple(z.shape)}, not torch.float16 {tuple(shape or z.shape)}"
            elif "sha256" not in tag or "index" not in tag:
                problem = "has no content digest (written by an older smitin)"
            elif tag["index"] != str(i):
                problem = f"is shard {tag['index']} of this cache, not shard {i} (moved or swapped)"
            elif tag["sha256"] != content_digest(z):
                problem = "does not match its content digest (damaged or edited)"
            elif not bool(torch.isfinite(z).all()):
                problem = "holds NaN or infinite values"
            else:
                return z
        warnings.warn(f"{path}: cached shard {problem}; recomputing it", stacklevel=3)
        path.unlink(missing_ok=True)
        return None

    def put(self, i: int, z: torch.Tensor) -> None:
        """Write shard `i` atomically, tagged with the key, its index and its content's SHA-256."""
        if self._lock is None and not self.peer:
            raise RuntimeError("ShardCache.put outside `with ShardCache(...)`: the key is not locked")
        path = self._path(i)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        z = z.contiguous()
        tag = {"key": self.digest, "index": str(i), "sha256": content_digest(z)}
        save_file({"z": z}, tmp, metadata=tag)
        os.replace(tmp, path)


def content_digest(z: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (a CPU tensor)."""
    sha = hashlib.sha256(f"{z.dtype}{tuple(z.shape)}".encode())
    sha.update(z.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


SHARDS = "shard-*.safetensors"


def _acquire(path: Path, what: Path, timeout: float | None) -> FileLock:
    """Take the lock at `path`, saying so on stderr if another process holds it and we wait."""
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
        return lock
    except Timeout:
        pass
    print(
        f"smitin: another process is computing the activations in {what}; waiting for it to finish "
        "(its shards are then reused)",
        file=sys.stderr,
    )
    try:
        lock.acquire(timeout=-1 if timeout is None else timeout)
    except Timeout:
        raise CacheBusyError(
            f"{what} is still locked by another smitin process after {timeout:g} s (lock file {path}); "
            "let that run finish, or give this one another --cache folder"
        ) from None
    return lock


def _read_manifest(path: Path) -> dict | None:
    """A cache manifest's content, or None if it is missing or not one of ours."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) and "key" in old else None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
