"""Decode codes while they are generated, in chunks that join without a seam.

A codec's decoder is not a per-frame function: EnCodec's convolutions and LSTM reach across
frames, and the bundled mel codec recovers phase by Griffin-Lim over the whole clip. So each chunk
is decoded with `context` frames before it and `lookahead` frames after it (both dropped), and
consecutive chunks overlap by `fade` frames that are crossfaded (a raised cosine), so that where
two decodes of the same frames disagree in phase there is no click. The cost of the lookahead is
latency: a chunk is ready once `lookahead` frames past it exist.

What this buys is measured, not assumed (`spectral_distance`, `seam_excess`, tests/test_chunked.py): for
EnCodec the streamed audio is the whole-clip decode up to a small error; for Griffin-Lim, whose
phase is only defined up to its random start, it is as close to the whole-clip decode as two
whole-clip decodes with different phase seeds are to each other.
"""

from __future__ import annotations

import numpy as np
import torch

from .backbone import Backbone

CHUNK = 10  # frames per chunk at least (200 ms at 50 Hz), fewer only at the end
CONTEXT = 8  # frames decoded before a chunk and dropped (more costs time and buys nothing measurable)
LOOKAHEAD = 6  # frames decoded after a chunk and dropped (the crossfade comes out of them)
FADE = 3  # frames over which consecutive chunks are crossfaded


class ChunkDecoder:
    """Feed it the codes so far ([K, frames], growing); it returns the audio of each new chunk.

    The chunks, concatenated, are one continuous signal of `frames * hop` samples (mono float32).
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        chunk: int = CHUNK,
        context: int = CONTEXT,
        lookahead: int = LOOKAHEAD,
        fade: int = FADE,
    ) -> None:
        if chunk < 1 or context < 0 or fade < 0 or lookahead < fade:
            raise ValueError(
                f"chunk >= 1, context >= 0 and lookahead >= fade >= 0, not {chunk}, {context}, {lookahead}, {fade}"
            )
        self.backbone = backbone
        self.chunk, self.context, self.lookahead, self.fade = chunk, context, lookahead, fade
        self.hop = round(backbone.sample_rate / backbone.frame_rate)
        self.done = 0  # frames whose audio has been handed out
        self._tail: np.ndarray | None = None  # the last decode's audio of the next `fade` frames
        ramp = np.arange(fade * self.hop, dtype=np.float32) + 0.5
        self._in = (0.5 - 0.5 * np.cos(np.pi * ramp / max(1, fade * self.hop))).astype(np.float32)

    def ready(self, frames: int) -> bool:
        """Whether `frames` complete frames are enough for the next chunk."""
        return frames - self.lookahead - self.done >= self.chunk

    def push(self, codes: torch.Tensor, final: bool = False) -> np.ndarray | None:
        """The audio of every frame now safe to hand out (all of them when `final`), or None."""
        n = codes.shape[-1]
        end = n if final else n - self.lookahead
        if end <= self.done or (not final and end - self.done < self.chunk):
            return None
        lo = max(0, self.done - self.context)
        hi = n if final else min(n, end + self.fade)
        audio = self.backbone.decode(codes[None, :, lo:hi])[0].numpy().astype(np.float32)
        audio = np.pad(audio, (0, max(0, (hi - lo) * self.hop - len(audio))))
        out = audio[(self.done - lo) * self.hop : (end - lo) * self.hop].copy()
        if self._tail is not None:
            k = min(len(self._tail), len(out))
            out[:k] = self._tail[:k] * (1 - self._in[:k]) + out[:k] * self._in[:k]
        self._tail = (
            None if final else audio[(end - lo) * self.hop : (end - lo + self.fade) * self.hop].copy()
        )
        self.done = end
        return out

    @property
    def latency_frames(self) -> int:
        """Frames that must exist past a frame before its audio can be handed out."""
        return self.lookahead


def spectral_distance(a: np.ndarray, b: np.ndarray, sample_rate: int, floor_db: float = -80.0) -> float:
    """Mean absolute difference in dB of two signals' magnitude spectrograms (phase-blind).

    Each spectrogram is floored `floor_db` below the louder signal's peak, so silence does not count.
    """
    n = min(len(a), len(b))
    n_fft = 1 << max(8, int(np.log2(sample_rate / 25)))  # about 40 ms
    window = torch.hann_window(n_fft)

    def db(x: np.ndarray) -> torch.Tensor:
        spec = torch.stft(
            torch.from_numpy(np.ascontiguousarray(x[:n], dtype=np.float32)),
            n_fft,
            n_fft // 4,
            window=window,
            return_complex=True,
        )
        return 20 * torch.log10(spec.abs().clamp(min=1e-10))

    da, dbb = db(a), db(b)
    top = float(torch.maximum(da.max(), dbb.max()))
    da, dbb = da.clamp(min=top + floor_db), dbb.clamp(min=top + floor_db)
    return float((da - dbb).abs().mean())


def seam_excess(
    audio: np.ndarray, reference: np.ndarray, hop: int, joins: list[int], width: int = 32
) -> float:
    """How much rougher `audio` is at the chunk joins than `reference` (the whole-clip decode) there.

    Per join (a frame index): the energy of the sample-to-sample steps within `width` samples of
    it, over the same in the reference; the median over the joins. About 1: the joins are as
    smooth as the whole-clip decode (no click); a hard cut between chunks measures 2 to 3.
    """
    da, dr = np.diff(audio) ** 2, np.diff(reference) ** 2
    ratios = [
        da[j * hop - width : j * hop + width].sum() / (dr[j * hop - width : j * hop + width].sum() + 1e-12)
        for j in joins
        if width <= j * hop < min(len(da), len(dr)) - width
    ]
    return float(np.median(ratios)) if ratios else 1.0
