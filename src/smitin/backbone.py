"""Load a MusicGen and describe where its attention heads live.

This is the one module that knows transformers' MusicGen internals: the path to each decoder
self-attention `out_proj` (whose input is the concatenation of the head outputs), the delay
pattern, the classifier-free-guidance row layout and the null text condition. Everything else in
smitin asks a `Backbone`.
"""

from __future__ import annotations

import hashlib
import json
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
        """Call `fn(past, input_ids)` before every forward of the decoder (the language model).

        `past` is the number of positions already in the KV cache (0 on a prefill, when a new
        generation starts), so a step's position is `past + offset`; `input_ids` is what the
        decoder is fed ([rows * K, positions]; None when it is fed embeddings). The one place that
        reads the cache length, whatever `transformers` calls the cache argument. Hooked on the
        language model rather than the stack inside it, so captured steps (`smitin.captured`),
        which replace its forward, are seen too.
        """

        def pre_hook(_module, _args, kwargs):
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            fn(cache.get_seq_length() if cache is not None else 0, kwargs.get("input_ids"))

        handle = self.model.decoder.register_forward_pre_hook(pre_hook, with_kwargs=True)
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


WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
WHAT_TO_GIVE = "a folder made by save_pretrained, a hub id such as facebook/musicgen-small, or 'bundled'"


def load(
    name: str | Path = BUNDLED,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
) -> Backbone:
    """Load a MusicGen by hub id (`facebook/musicgen-small`), local folder, or "bundled".

    A name that is a path here, or that cannot be a hub id, is a folder, checked before anything
    is read (config.json, weights); hub ids are passed to `from_pretrained` as-is: they work
    online or from the local cache. Every way a model can be unusable is a `ModelError` naming
    it and the fix, including a codec that yields another number of codebooks than the decoder
    reads (checked by encoding a few frames of silence).
    """
    from transformers import AutoConfig, AutoProcessor

    from . import codec as _codec  # noqa: F401  registers the bundled model's codec with transformers

    torch_dtype: torch.dtype | None = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    src = _source(name)
    try:
        config = AutoConfig.from_pretrained(src)
    except (OSError, ValueError) as err:
        why = str(err).strip().rstrip(".")
        if isinstance(src, Path):
            raise ModelError(
                f"cannot read the model config {src / 'config.json'}: {why}. Give {WHAT_TO_GIVE}."
            ) from err
        raise ModelError(
            f"cannot load model {src!r}: no folder of that name here, and as a hub id: {why}. Give {WHAT_TO_GIVE}."
        ) from err
    model_cls = _model_class(config.model_type, name)
    if isinstance(src, Path):
        _require_weights(src)
    model = _weights(model_cls, src, torch_dtype)
    try:
        processor = AutoProcessor.from_pretrained(src)
    except (OSError, ValueError, TypeError):
        processor = None
    backbone = Backbone(model.to(device), processor, name=str(name))
    _check_codebooks(backbone, src)
    return backbone


def _source(name: str | Path) -> Path | str:
    """The checked folder `name` names, or `name` itself when it can only be a hub id."""
    if str(name) == BUNDLED:
        if not (BUNDLED_PATH / "config.json").exists() or not _has_weights(BUNDLED_PATH):
            raise ModelError(f"the bundled model is missing from {BUNDLED_PATH}; reinstall smitin")
        return BUNDLED_PATH
    path = Path(name).expanduser()
    if not path.exists() and not isinstance(name, Path) and _is_hub_id(str(name)):
        return str(name)
    if not path.exists():
        raise ModelError(
            f"cannot load a model config from {path}: there is no such folder, and {str(name)!r} is "
            f"not a hub id (owner/name). Give {WHAT_TO_GIVE}."
        )
    if not path.is_dir():
        raise ModelError(
            f"{path} is a file, not a model folder: give the folder that holds config.json and "
            f"model.safetensors (as written by save_pretrained), or a hub id such as facebook/musicgen-small."
        )
    if not (path / "config.json").is_file():
        raise ModelError(
            f"{path} is not a model folder: it has no config.json. A MusicGen folder is written by "
            f"model.save_pretrained(folder) (config.json + model.safetensors); or give a hub id such as "
            f"facebook/musicgen-small, or 'bundled'."
        )
    return path


def _require_weights(path: Path) -> None:
    """Refuse a model folder with no weights file (checked once its config is known to be a MusicGen)."""
    if not _has_weights(path):
        raise ModelError(
            f"{path} has a config.json but no weights (none of {', '.join(WEIGHT_FILES)}): save the "
            f"model there again with model.save_pretrained({str(path)!r}), or give its hub id "
            f"(e.g. facebook/musicgen-small)."
        )


def _has_weights(folder: Path) -> bool:
    return any((folder / f).is_file() for f in WEIGHT_FILES)


def _is_hub_id(name: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _weights(model_cls: Any, src: Path | str, dtype: torch.dtype | None) -> nn.Module:
    """`from_pretrained`, with unreadable or mismatched weights, or a partial decoder, as a `ModelError`."""
    from safetensors import SafetensorError

    kwargs: dict[str, Any] = {"output_loading_info": True}
    if dtype:
        kwargs["dtype"] = dtype
    if isinstance(src, Path):
        where, again = (
            f"the weights in {src}",
            "save the model there again with save_pretrained, or give its hub id",
        )
        hint = "The file is probably truncated or corrupt (an interrupted copy or download)"
    else:
        where, again = (
            f"the weights of hub model {src!r}",
            "delete its copy in the Hugging Face cache and retry",
        )
        hint = "The download failed or the cached copy is damaged"
    try:
        model, info = model_cls.from_pretrained(src, **kwargs)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as err:
        if "mismatch" not in str(err):
            raise
        raise ModelError(
            f"{where} do not fit its config.json (tensor shapes differ): the two come from different "
            f"models; {again}."
        ) from err
    except (OSError, ValueError, EOFError, SafetensorError) as err:
        why = str(err).strip().rstrip(".")
        raise ModelError(f"cannot read {where}: {why}. {hint}; {again}.") from err
    missing = sorted(k for k in info.get("missing_keys", ()) if k.startswith("decoder."))
    extra = sorted(k for k in info.get("unexpected_keys", ()) if k.startswith("decoder."))
    if isinstance(src, Path) and not extra:  # transformers may drop extra keys without a word
        extra = sorted(_saved_keys(src, "decoder.") - set(model.state_dict()))
    if missing or extra:
        what = (
            f"lack {len(missing)} decoder tensors its config.json asks for (e.g. {missing[0]}), which would be random"
            if missing
            else f"hold {len(extra)} decoder tensors its config.json has no place for (e.g. {extra[0]})"
        )
        raise ModelError(f"{where} {what}: the weights and the config come from different models; {again}.")
    return model


def _saved_keys(folder: Path, prefix: str) -> set[str]:
    """The tensor names starting with `prefix` in a folder's safetensors weights (headers only)."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        keys = set(json.loads(index.read_text()).get("weight_map", {}))
    elif (folder / "model.safetensors").is_file():
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            keys = set(f.keys())
    else:
        keys = set()
    return {k for k in keys if k.startswith(prefix)}


def _check_codebooks(backbone: Backbone, src: Path | str) -> None:
    """Refuse a model whose codec yields another number of codebooks than its decoder reads."""
    hop = max(1, round(backbone.sample_rate / backbone.frame_rate))
    try:
        codec_k = int(backbone.encode(torch.zeros(1, 2 * hop)).shape[1])
    except (RuntimeError, ValueError, IndexError) as err:
        raise ModelError(f"{src}: its codec (audio_encoder) cannot encode audio: {err}") from err
    if codec_k != backbone.num_codebooks:
        raise ModelError(
            f"{src}: its codec (audio_encoder) yields {codec_k} codebooks per frame but its decoder "
            f"reads {backbone.num_codebooks} (decoder num_codebooks): codec and decoder come from "
            f"different models. Pair the decoder with a codec of {backbone.num_codebooks} codebooks "
            f"(for EnCodec, the target bandwidth sets how many), or give a model saved whole by "
            f"save_pretrained."
        )


def _model_class(model_type: str, name: str | Path) -> Any:
    from transformers import MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration

    classes = {
        "musicgen": MusicgenForConditionalGeneration,
        "musicgen_melody": MusicgenMelodyForConditionalGeneration,
    }
    if model_type not in classes:
        raise ModelError(f"{name!r} is a {model_type!r} model; smitin steers MusicGen and MusicGen-Melody")
    return classes[model_type]
