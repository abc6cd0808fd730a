"""Load a MusicGen and describe where its attention heads live.

This is the one module that knows transformers' MusicGen internals: the path to each decoder
self-attention `out_proj` (whose input is the concatenation of the head outputs), the delay
pattern, the classifier-free-guidance row layout and the null text condition. Everything else in
smitin asks a `Backbone`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

BUNDLED = "bundled"
BUNDLED_PATH = Path(__file__).parent / "assets" / "tiny-musicgen"


class ModelError(RuntimeError):
    """A model could not be loaded or does not look like a MusicGen."""


@dataclass(frozen=True)
class HeadLayout:
    """Shape of the decoder's self-attention heads: what a probe file must match."""

    layers: int
    heads: int
    head_dim: int

    @property
    def width(self) -> int:
        return self.heads * self.head_dim

    def fingerprint(self) -> str:
        return f"L{self.layers}xH{self.heads}xD{self.head_dim}"


class Backbone:
    """A MusicGen model, its processor (if any) and the facts smitin needs about it."""

    def __init__(self, model: nn.Module, processor: Any = None, name: str = "custom") -> None:
        # transformers' MusicGen classes, typed loosely: their sub-modules are reached by attribute
        self.model: Any = model.eval()
        self.processor = processor
        self.name = name
        self.is_melody = type(model).__name__.startswith("MusicgenMelody")
        self.out_projs: list[nn.Linear] = [layer.self_attn.out_proj for layer in self._decoder_layers()]
        attn: Any = self._decoder_layers()[0].self_attn
        config: Any = self.model.config
        heads = int(getattr(attn, "num_heads", 0) or config.decoder.num_attention_heads)
        width = self.out_projs[0].in_features
        if width % heads:
            raise ModelError(f"{name}: out_proj width {width} is not a multiple of {heads} heads")
        self.layout = HeadLayout(len(self.out_projs), heads, width // heads)

    # -- structure -------------------------------------------------------------------------
    def _decoder_layers(self) -> Any:
        try:
            return self.model.decoder.model.decoder.layers
        except AttributeError as err:
            raise ModelError(
                f"{self.name}: not a MusicGen (no decoder.model.decoder.layers); load a "
                "MusicgenForConditionalGeneration or MusicgenMelodyForConditionalGeneration"
            ) from err

    @property
    def decoder_stack(self) -> nn.Module:
        """The module whose forward sees every step's `input_ids` and cache."""
        return self.model.decoder.model.decoder

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.out_projs[0].weight.dtype

    @property
    def num_codebooks(self) -> int:
        return int(self.model.decoder.num_codebooks)

    @property
    def pad_token_id(self) -> int:
        return int(self.model.generation_config.pad_token_id or self.model.config.decoder.pad_token_id)

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.audio_encoder.sampling_rate)

    @property
    def frame_rate(self) -> float:
        cfg = self.model.config.audio_encoder
        rate = getattr(cfg, "frame_rate", None)
        if rate is None:
            rate = cfg.sampling_rate / int(np.prod(cfg.upsampling_ratios))
        return float(rate)

    def weights_digest(self) -> str:
        """Short hash of a few decoder weights: tells two models of one layout apart, cheaply."""
        h = hashlib.sha256()
        for proj in (self.out_projs[0], self.out_projs[-1]):
            h.update(proj.weight.detach().flatten()[:4096].float().cpu().numpy().tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        return {
            "model": self.name,
            "class": type(self.model).__name__,
            **asdict(self.layout),
            "layout": self.layout.fingerprint(),
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "num_codebooks": self.num_codebooks,
        }

    @contextmanager
    def head_hooks(self, fn: Callable[[int, torch.Tensor], torch.Tensor | None]) -> Iterator[None]:
        """Call `fn(layer, heads)` on every decoder self-attention output before `out_proj`.

        `heads` is [rows, positions, heads * head_dim] (head h is slice h*D:(h+1)*D). `fn` may
        return an edited tensor, which then replaces the input of `out_proj`.
        """

        def make(layer: int):
            def pre_hook(_module, args):
                out = fn(layer, args[0])
                return None if out is None else (out, *args[1:])

            return pre_hook

        handles = [proj.register_forward_pre_hook(make(i)) for i, proj in enumerate(self.out_projs)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    @contextmanager
    def decoder_steps(self, fn: Callable[[int, torch.Tensor | None], None]) -> Iterator[None]:
        """Call `fn(past, input_ids)` before every forward of the decoder stack.

        `past` is the number of positions already in the KV cache (0 on a prefill, when a new
        generation starts), so a step's position is `past + offset`; `input_ids` is what the
        decoder is fed ([rows * K, positions]; None when it is fed embeddings). The one place that
        reads the cache length, whatever `transformers` calls the cache argument.
        """

        def pre_hook(_module, _args, kwargs):
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            fn(cache.get_seq_length() if cache is not None else 0, kwargs.get("input_ids"))

        handle = self.decoder_stack.register_forward_pre_hook(pre_hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    # -- audio <-> codes -------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, audio: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Mono audio [B, S] at `sample_rate` -> codes [B, K, T]."""
        audio = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio)
        if audio.dim() == 1:
            audio = audio[None]
        x = audio[:, None].to(self.device, torch.float32)
        enc = self.model.audio_encoder
        out = enc.encode(x.to(next(enc.parameters(), x).dtype))
        codes = out.audio_codes if hasattr(out, "audio_codes") else out[0]
        return codes[0]  # drop the chunk axis (MusicGen uses one chunk)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, T] -> audio [B, S] (float32, CPU).

        Calls the codec's class method: while `generate` runs, the engine wraps the instance's
        `decode` to keep the codes it decodes, and a preview decoded meanwhile must not land there.
        """
        codec = self.model.audio_encoder
        device = next(codec.parameters(), torch.zeros(0)).device
        out = type(codec).decode(codec, codes[None].to(device), [None] * codes.shape[0])
        values = out.audio_values if hasattr(out, "audio_values") else out[0]
        return values[:, 0].float().cpu()

    def round_trip(self, audio: np.ndarray, batch: int = 8) -> np.ndarray:
        """Clips [N, S] through the codec (encode + decode), same length out: the domain generated audio lives in."""
        return codec_round_trip(lambda x: self.decode(self.encode(x)), audio, batch)

    def delayed_input_ids(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, T] -> teacher-forced decoder input [B*K, T+1] in MusicGen's delay pattern.

        Position t holds codebook k of frame t-1-k (pad where negative), exactly what `generate`
        feeds when continuing these codes, so the last position is step 0 of a continuation.
        """
        b, k, t = codes.shape
        bos = torch.full((b, k, 1), self.pad_token_id, dtype=torch.long, device=codes.device)
        ids = torch.cat([bos, codes.long()], dim=-1).reshape(b * k, t + 1)
        delayed, _ = self.model.decoder.build_delay_pattern_mask(ids, self.pad_token_id, max_length=t + 1 + k)
        return delayed[:, : t + 1]

    def null_condition(self, batch: int) -> dict:
        """Inputs for the null text condition (what CFG's unconditional rows see)."""
        pad = getattr(self.model.config.text_encoder, "pad_token_id", 0) or 0
        return {
            "input_ids": torch.full((batch, 1), pad, dtype=torch.long, device=self.device),
            "attention_mask": torch.zeros((batch, 1), dtype=torch.long, device=self.device),
        }

    def condition(self, texts: list[str]) -> dict:
        """The decoder's text condition for a batch: tokenised prompts, or the null one if all are empty."""
        return self.text_condition(texts) if any(texts) else self.null_condition(len(texts))

    def text_condition(self, texts: list[str]) -> dict:
        """Tokenised text prompts (needs the processor)."""
        if self.processor is None:
            raise ModelError(f"{self.name}: no processor saved with this model; text prompts need one")
        enc = self.processor(text=texts, padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}


def codec_round_trip(
    through: Callable[[torch.Tensor], torch.Tensor], audio: np.ndarray, batch: int = 8
) -> np.ndarray:
    """Pass clips [N, S] through `through` ([B, S] -> [B, S']) in batches; pad or cut to S."""
    out = []
    for i in range(0, len(audio), batch):
        x = torch.from_numpy(np.ascontiguousarray(audio[i : i + batch], dtype=np.float32))
        y = through(x).float().cpu().numpy()
        out.append(np.pad(y, ((0, 0), (0, max(0, x.shape[1] - y.shape[1]))))[:, : x.shape[1]])
    return np.concatenate(out) if out else np.zeros((0, audio.shape[-1]), np.float32)


def load(
    name: str | Path = BUNDLED,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
) -> Backbone:
    """Load a MusicGen by hub id (`facebook/musicgen-small`), local folder, or "bundled".

    Hub ids are passed to `from_pretrained` as-is: they work online or from the local cache.
    """
    from transformers import AutoConfig, AutoProcessor

    from . import codec as _codec  # noqa: F401  registers the bundled model's codec with transformers

    src = BUNDLED_PATH if str(name) == BUNDLED else name
    if str(name) == BUNDLED and not (BUNDLED_PATH / "config.json").exists():
        raise ModelError(f"the bundled model is missing from {BUNDLED_PATH}; reinstall smitin")
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    try:
        config = AutoConfig.from_pretrained(src)
    except (OSError, ValueError) as err:
        raise ModelError(
            f"cannot load a model config from {name!r}: {err}. Give a hub id such as "
            "facebook/musicgen-small (needs internet or the local cache), a folder made by "
            "save_pretrained, or 'bundled'."
        ) from err
    model_cls = _model_class(config.model_type, name)
    model = model_cls.from_pretrained(src, dtype=dtype) if dtype else model_cls.from_pretrained(src)
    try:
        processor = AutoProcessor.from_pretrained(src)
    except (OSError, ValueError, TypeError):
        processor = None
    return Backbone(model.to(device), processor, name=str(name))


def _model_class(model_type: str, name: str | Path) -> Any:
    from transformers import MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration

    classes = {
        "musicgen": MusicgenForConditionalGeneration,
        "musicgen_melody": MusicgenMelodyForConditionalGeneration,
    }
    if model_type not in classes:
        raise ModelError(f"{name!r} is a {model_type!r} model; smitin steers MusicGen and MusicGen-Melody")
    return classes[model_type]
