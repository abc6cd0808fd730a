"""Data-parallel runs on torch.distributed: which rank this is, its share of the work, and joining.

smitin is launched the standard way (``torchrun``, ``accelerate launch``, or ``srun`` running
``torchrun``); the launcher sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address. smitin
adds only two things: work items are split by a fixed index (item i goes to rank i % world size,
so the split, and every seeded result, is the same however many ranks run), and ranks wait for
each other at barriers with a timeout (``SMITIN_DIST_TIMEOUT`` seconds, default 10800, as rank 0
may spend hours preparing data while the others wait) instead of
hanging when one dies. A rank that fails exits non-zero; torchrun then stops the others and
reports that rank's error (``@record`` on the entry point keeps its message).

Float results (activations, probes) equal a one-process run's only with the same number of
threads per process: torchrun sets OMP_NUM_THREADS=1 for every rank, while a plain run uses all
cores, and a different thread count sums in another order (probes measured 1.9e-4 apart). Run
the one-process reference with OMP_NUM_THREADS=1 to compare byte for byte.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

DEFAULT_TIMEOUT_S = 10800.0  # 3 h: rank 0 may prepare data, probes and judges while the others wait


class LaunchError(ValueError):
    """The launcher's variables (RANK, WORLD_SIZE, LOCAL_RANK, SMITIN_DIST_TIMEOUT) make no sense."""


@dataclass(frozen=True)
class World:
    """This process's place in a run: rank of size (size 1: a plain one-process run)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Rank 0: shows progress bars, writes what is written once, assembles results."""
        return self.rank == 0

    def mine(self, n: int) -> list[int]:
        """The item indices of 0..n-1 this rank does: i % size == rank."""
        return list(range(self.rank, n, self.size))

    def device(self, device: str) -> str:
        """One device per rank: plain "cuda" becomes cuda:LOCAL_RANK; anything else is kept."""
        return f"cuda:{self.local_rank}" if self.distributed and device == "cuda" else device

    def tag(self) -> str:
        """A prefix for printed lines that names the rank (empty in a one-process run)."""
        return f"[rank {self.rank}/{self.size}] " if self.distributed else ""


def world_from_env(env: Mapping[str, str] | None = None) -> World:
    """The World the launcher's variables describe (RANK, WORLD_SIZE, LOCAL_RANK); none: one process."""
    env = os.environ if env is None else env

    def number(name: str, default: int) -> int:
        raw = env.get(name)
        try:
            return default if raw is None or raw == "" else int(raw)
        except ValueError:
            raise LaunchError(f"{name}={raw!r} is not a whole number; launch with torchrun") from None

    rank, size = number("RANK", 0), number("WORLD_SIZE", 1)
    local = number("LOCAL_RANK", rank)
    if size < 1 or not 0 <= rank < size:
        raise LaunchError(f"RANK={rank} must be in 0..WORLD_SIZE-1 (WORLD_SIZE={size}); launch with torchrun")
    if not 0 <= local < size:
        raise LaunchError(
            f"LOCAL_RANK={local} must be in 0..WORLD_SIZE-1 (WORLD_SIZE={size}); launch with torchrun"
        )
    return World(rank, size, local)


def timeout() -> timedelta:
    """How long a barrier waits for the other ranks (SMITIN_DIST_TIMEOUT seconds, default 10800)."""
    raw = os.environ.get("SMITIN_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        raise LaunchError(f"SMITIN_DIST_TIMEOUT={raw!r} is not a number of seconds") from None
    if not 0 < seconds <= 10 * 365 * 86400:
        raise LaunchError(
            f"SMITIN_DIST_TIMEOUT={raw!r} must be a positive number of seconds (up to ten years)"
        )
    return timedelta(seconds=seconds)


@contextmanager
def joined(device: str = "cpu") -> Iterator[World]:
    """Join the process group the launcher describes (gloo on CPU, nccl on CUDA) for the block."""
    world = world_from_env()
    if not world.distributed:
        yield world
        return
    import torch
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(world.local_rank)
    owner = not dist.is_initialized()  # accelerate or a test may have joined already
    if owner:
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout())
    try:
        yield world
    finally:
        if owner and dist.is_initialized():
            dist.destroy_process_group()


def barrier(world: World) -> None:
    """Wait for every rank; after the timeout, fail naming the ranks that did not arrive (gloo)."""
    if not world.distributed:
        return
    import torch.distributed as dist

    if dist.get_backend() == "gloo":
        dist.monitored_barrier(timeout=timeout())
    else:
        dist.barrier()


def rounds(world: World, n: int, batch: int) -> list[tuple[int, list[int], int]]:
    """This rank's batches of 0..n-1 as (batch index, item indices, items the whole world did by then).

    Batch b holds items b*batch ... and goes to rank b % size; the third value lets rank 0 show a
    progress bar with the global count without talking to the others.
    """
    starts = list(range(0, n, batch))
    out = []
    for b in world.mine(len(starts)):
        first_of_round = b - world.rank
        done = min(n, (first_of_round + world.size) * batch)
        out.append((b, list(range(starts[b], min(starts[b] + batch, n))), done))
    return out
