"""Memory a generation will need, estimated before it starts, against what the machine has free.

A batch too big for the machine used to run for minutes and then be ended by the kernel's
out-of-memory killer (on a machine shared with others). The estimate is deliberately simple and
on the high side: the decoder's key/value cache (self- and cross-attention, every layer, every
row), the logits of one step, and the codec's decode of the whole clip at once (what
`transformers` does), at `CODEC_BYTES_PER_FILTER` bytes per output sample and codec filter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backbone import Backbone

CODEC_BYTES_PER_FILTER = 32  # live float32 activations per output sample and codec filter (EnCodec: 8)
DEFAULT_FILTERS = 16  # codecs without `num_filters` (the bundled mel codec): a small conv stack
TEXT_TOKENS = 64  # cross-attention length assumed for a text prompt
USABLE = 0.9  # share of the free memory a generation may plan to use


@dataclass(frozen=True)
class Estimate:
    """Bytes a generation of `rows` rows needs, and what the device has free (None: unknown)."""

    rows: int
    need: int
    free: int | None
    per_row: int

    @property
    def fits(self) -> bool:
        return self.free is None or self.need <= USABLE * self.free

    def most_rows(self) -> int:
        """The most rows that fit (at least 0); the whole request when the free memory is unknown."""
        if self.free is None:
            return self.rows
        return max(0, int(USABLE * self.free) // max(1, self.per_row))


def gib(n: float) -> str:
    """Bytes as GiB, or MiB below one GiB."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def decoder_row_bytes(backbone: Backbone, steps: int) -> int:
    """Estimated bytes one decoder row keeps at its peak: key/value caches and a step's logits."""
    config = backbone.model.config
    decoder = getattr(config, "decoder", config)
    item = max(2, backbone.dtype.itemsize)
    kv = backbone.layout.layers * 2 * (steps + 1 + TEXT_TOKENS) * backbone.layout.width * item
    vocab = int(getattr(decoder, "vocab_size", 2048))
    return kv + 4 * backbone.num_codebooks * vocab * 4  # a few float32 copies of one step's logits


def decode_bytes(backbone: Backbone, samples: int) -> int:
    """Estimated bytes the codec needs to decode `samples` output samples of one clip at once."""
    codec = getattr(backbone.model.config, "audio_encoder", None)
    filters = int(getattr(codec, "num_filters", DEFAULT_FILTERS) or DEFAULT_FILTERS)
    return samples * filters * CODEC_BYTES_PER_FILTER


def free_bytes(device: str | object) -> int | None:
    """Free memory of `device`: CUDA's free memory, else the system's MemAvailable (None: unknown)."""
    name = str(device)
    if name.startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.mem_get_info(torch.device(name))[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def estimate(backbone: Backbone, samples: int, steps: int, seconds: float, cfg: bool) -> Estimate:
    """The estimate for `samples` clips of `seconds` seconds (`steps` decoder steps) on `backbone`.

    With CFG each clip runs two decoder rows (conditional and unconditional); each is decoded once.
    """
    rows = 2 if cfg else 1
    one = rows * decoder_row_bytes(backbone, steps) + decode_bytes(
        backbone, round(seconds * backbone.sample_rate)
    )
    return Estimate(samples, samples * one, free_bytes(backbone.device), one)
