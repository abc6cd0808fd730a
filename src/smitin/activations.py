"""Head activations z[l, h] from teacher-forced passes, and a resumable on-disk cache of them.

A segment's EnCodec codes are fed in MusicGen's delay pattern under the null text condition (what
CFG's unconditional rows see; a text can be given instead) and the input of every self-attention
`out_proj` is read at the last position(s): the last position is exactly step 0 of a continuation
of that segment, i.e. what the monitor reads when generation starts from it.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .backbone import Backbone
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
    flat while extracting and a killed run resumes where it stopped; a different model, dataset or
    setting invalidates the cache (it is cleared, never mixed).
    """
    if backbone.sample_rate != segments.sample_rate:
        raise ValueError(
            f"segments are at {segments.sample_rate} Hz but {backbone.name} needs {backbone.sample_rate} Hz; "
            "build the segment set with sample_rate=backbone.sample_rate"
        )
    n = len(segments)
    if n == 0:
        raise ValueError("no segments to extract: check the data folder and the trait name")
    key = {
        "model": backbone.name,
        "layout": backbone.layout.fingerprint(),
        "weights": backbone.weights_digest(),
        "data": segments.fingerprint(),
        "last": last,
        "text": text,
        "batch_size": batch_size,
    }
    cache = ShardCache(cache_dir, key) if cache_dir is not None else None
    shards: list[torch.Tensor] = []
    starts = range(0, n, batch_size)
    bar = tqdm(total=n, desc="activations", unit="seg", disable=not progress)
    for i, start in enumerate(starts):
        idx = list(range(start, min(start + batch_size, n)))
        z = cache.get(i) if cache else None
        if z is None:
            audio = torch.from_numpy(np.ascontiguousarray(segments.load(idx)))
            codes = backbone.encode(audio)
            cond = backbone.condition([text or ""] * len(idx))
            z = capture(backbone, codes, last=last, condition=cond).to("cpu", torch.float16)
            if cache:
                cache.put(i, z)
        shards.append(z)
        bar.update(len(idx))
    bar.close()
    info = {**key, "segments": n, "smitin": __version__}
    return Activations(torch.cat(shards), np.asarray(segments.labels()), list(segments.groups()), info)


class ShardCache:
    """Numbered fp16 shards plus a manifest naming what they were computed from."""

    def __init__(self, root: str | Path, key: dict) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.key = key
        manifest = self.root / MANIFEST
        old = None
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text())
            except json.JSONDecodeError:
                old = None
        if old is None or old.get("key") != key:
            if old is not None:
                warnings.warn(
                    f"{self.root}: cached activations were made from other inputs; recomputing", stacklevel=3
                )
            for f in self.root.glob("shard-*.safetensors"):
                f.unlink()
            _atomic_write(manifest, json.dumps({"key": key, "smitin": __version__}, indent=1).encode())

    def _path(self, i: int) -> Path:
        return self.root / f"shard-{i:06d}.safetensors"

    def get(self, i: int) -> torch.Tensor | None:
        path = self._path(i)
        if not path.exists():
            return None
        try:
            return load_file(path)["z"]
        except (SafetensorError, OSError, KeyError):
            path.unlink(missing_ok=True)  # torn write from a killed run: redo this shard
            return None

    def put(self, i: int, z: torch.Tensor) -> None:
        path = self._path(i)
        tmp = path.with_suffix(".tmp")
        save_file({"z": z.contiguous()}, tmp)
        os.replace(tmp, path)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
