"""A non-learned audio codec that MusicGen can drive: residual k-means VQ over log-mel frames.

Why not a learned EnCodec: a small EnCodec trained for 10 minutes on these CPUs reconstructed
noise (see facts.md), while k-means residual VQ over 80-band log-mel frames, decoded by mel
inversion + Griffin-Lim, keeps onsets, drum hits and enough timbre for instrument classifiers.

The model exposes exactly the interface `MusicgenForConditionalGeneration` calls on its
`audio_encoder`: `encode(input_values [B,1,S]) -> .audio_codes [1,B,K,T], .audio_scales`,
`decode(audio_codes [1,B,K,T], audio_scales) -> .audio_values [B,1,S]`, plus `forward`.
Importing this module registers it with `AutoConfig` / `AutoModel`, so a MusicGen folder whose
`audio_encoder` has `model_type == "smitin_melcodec"` loads with `from_pretrained`.

Length: over 400 lines because a transformers model class needs its config, three output
classes, the DSP (mel analysis and Griffin-Lim inversion) and the k-means fit together in one
registered module; split, `from_pretrained` would need several modules imported in order.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

MODEL_TYPE = "smitin_melcodec"


class MelCodecConfig(PretrainedConfig):
    """Configuration of the mel codec; field names follow `EncodecConfig` where MusicGen reads them."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        sampling_rate: int = 16000,
        audio_channels: int = 1,
        n_fft: int = 1024,
        hop_length: int = 320,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        codebook_size: int = 1024,
        num_codebooks: int = 4,
        log_floor: float = 1e-5,
        griffin_lim_iters: int = 32,
        griffin_lim_momentum: float = 0.99,
        phase_seed: int = 0,
        normalize: bool = False,
        chunk_length_s: float | None = None,
        overlap: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.sampling_rate = sampling_rate
        self.audio_channels = audio_channels
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.f_min = f_min
        self.f_max = f_max
        self.codebook_size = codebook_size
        self.num_codebooks = num_codebooks
        self.log_floor = log_floor
        self.griffin_lim_iters = griffin_lim_iters
        self.griffin_lim_momentum = griffin_lim_momentum
        self.phase_seed = phase_seed
        # EnCodec-compatible fields that callers (processor, pipelines) may read; chunking is unsupported.
        self.normalize = normalize
        self.chunk_length_s = chunk_length_s
        self.overlap = overlap
        super().__init__(**kwargs)

    @property
    def frame_rate(self) -> float:
        return self.sampling_rate / self.hop_length

    @property
    def num_quantizers(self) -> int:
        return self.num_codebooks

    @property
    def codebook_dim(self) -> int:
        return self.n_mels

    @property
    def chunk_length(self) -> int | None:
        return None

    @property
    def chunk_stride(self) -> int | None:
        return None


@dataclass
class MelCodecEncoderOutput(ModelOutput):
    """`audio_codes` [1, B, K, T] (one chunk, like EnCodec without chunking); `audio_scales` [None] * B."""

    audio_codes: torch.Tensor | None = None
    audio_scales: list | None = None


@dataclass
class MelCodecDecoderOutput(ModelOutput):
    """`audio_values` [B, 1, S]."""

    audio_values: torch.Tensor | None = None


@dataclass
class MelCodecOutput(ModelOutput):
    audio_codes: torch.Tensor | None = None
    audio_values: torch.Tensor | None = None


def _hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (matches librosa's default)."""
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return torch.where(
        f < min_log_hz, f / f_sp, min_log_mel + torch.log(f.clamp(min=1e-10) / min_log_hz) / logstep
    )


def _mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return torch.where(m < min_log_mel, m * f_sp, min_log_hz * torch.exp(logstep * (m - min_log_mel)))


def mel_filterbank(
    sr: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Slaney-normalised triangular filters, [n_mels, n_fft // 2 + 1], float64 for a stable pseudo-inverse."""
    f_max = sr / 2 if f_max is None else f_max
    fft_freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(
        float(_hz_to_mel(torch.tensor(f_min, dtype=torch.float64))),
        float(_hz_to_mel(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz = _mel_to_hz(mels)
    lower = (fft_freqs[None, :] - hz[:-2, None]) / (hz[1:-1] - hz[:-2])[:, None]
    upper = (hz[2:, None] - fft_freqs[None, :]) / (hz[2:] - hz[1:-1])[:, None]
    fb = torch.clamp(torch.minimum(lower, upper), min=0.0)
    return fb * (2.0 / (hz[2:] - hz[:-2]))[:, None]


class MelCodecPreTrainedModel(PreTrainedModel):
    config_class = MelCodecConfig
    base_model_prefix = "melcodec"
    main_input_name = "input_values"
    # No attention inside; declaring support lets a parent MusicGen switch its attention backend.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    def _init_weights(self, module: torch.nn.Module) -> None:
        # Non-zero random codebooks, so an unfitted codec still maps different audio to different codes
        # (a zero codebook makes audio-dependent tests prove nothing).
        if isinstance(module, MelCodecModel):
            cb = module.codebooks
            # A parent model's post_init (e.g. MusicGen built around a fitted codec) calls this again:
            # never overwrite codebooks that are already set.
            if cb.device.type == "meta" or bool(cb.abs().sum() > 0):
                return
            g = torch.Generator().manual_seed(0)
            cb = torch.randn(module.codebooks.shape, generator=g) * 2.0
            cb[0] += math.log(module.config.log_floor) / 2  # centre near typical log-mel levels
            with torch.no_grad():
                module.codebooks.copy_(cb.to(module.codebooks.dtype))


class MelCodecModel(MelCodecPreTrainedModel):
    """Log-mel residual-VQ codec; codebooks are the only state (a persistent buffer, saved in safetensors)."""

    codebooks: torch.Tensor  # [K, codebook_size, n_mels], registered as a buffer in __init__

    def __init__(self, config: MelCodecConfig) -> None:
        super().__init__(config)
        self.register_buffer(
            "codebooks",
            torch.zeros(config.num_codebooks, config.codebook_size, config.n_mels),
            persistent=True,
        )
        self._dsp_cache: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.post_init()

    # No parameters at all, so the PreTrainedModel defaults (first parameter) would fail.
    @property
    def dtype(self) -> torch.dtype:
        return self.codebooks.dtype

    @property
    def device(self) -> torch.device:
        return self.codebooks.device

    # ---- signal processing (float32; filters cached per device, never saved) ----
    def _dsp(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = str(device)
        if key not in self._dsp_cache:
            c = self.config
            fb = mel_filterbank(c.sampling_rate, c.n_fft, c.n_mels, c.f_min, c.f_max)
            inv = torch.linalg.pinv(fb)
            window = torch.hann_window(c.n_fft, dtype=torch.float32)
            self._dsp_cache[key] = (fb.float().to(device), inv.float().to(device), window.to(device))
        return self._dsp_cache[key]

    def num_frames(self, num_samples: int) -> int:
        return max(1, math.ceil(num_samples / self.config.hop_length))

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, S] audio -> [B, T, n_mels] log-mel, T = ceil(S / hop) (frame t is centred at t * hop)."""
        c = self.config
        audio = audio.float()
        n = self.num_frames(audio.shape[-1])
        audio = torch.nn.functional.pad(audio, (0, n * c.hop_length - audio.shape[-1]))
        fb, _, window = self._dsp(audio.device)
        spec = torch.stft(
            audio, c.n_fft, c.hop_length, window=window, center=True, pad_mode="constant", return_complex=True
        )[..., :n]
        mel = torch.matmul(fb, spec.abs())
        return torch.log(mel.clamp(min=c.log_floor)).transpose(1, 2)

    def mel_to_audio(self, logmel: torch.Tensor) -> torch.Tensor:
        """[B, T, n_mels] log-mel -> [B, T * hop] audio by pseudo-inverse + fast Griffin-Lim.

        The initial phase comes from a fixed-seed generator, so decoding is deterministic.
        """
        c = self.config
        _, inv, window = self._dsp(logmel.device)
        mag = torch.matmul(inv, torch.exp(logmel.float()).transpose(1, 2)).clamp(min=0.0)  # [B, F, T]
        mag = torch.cat([mag, mag[..., -1:]], dim=-1)  # T + 1 frames -> exactly T * hop samples
        length = (mag.shape[-1] - 1) * c.hop_length
        g = torch.Generator().manual_seed(int(c.phase_seed))
        phase = torch.rand(mag.shape[-2:], generator=g) * (2 * math.pi)
        angles = torch.polar(torch.ones_like(phase), phase).to(mag.device).expand_as(mag).clone()
        prev = torch.zeros_like(angles)
        stft_kw = dict(n_fft=c.n_fft, hop_length=c.hop_length, window=window, center=True)
        for _ in range(int(c.griffin_lim_iters)):
            audio = torch.istft(mag * angles, length=length, **stft_kw)
            rebuilt = torch.stft(audio, pad_mode="constant", return_complex=True, **stft_kw)
            angles = rebuilt - (c.griffin_lim_momentum / (1 + c.griffin_lim_momentum)) * prev
            prev = rebuilt
            angles = angles / angles.abs().clamp(min=1e-16)
        return torch.istft(mag * angles, length=length, **stft_kw)

    # ---- vector quantisation ----
    def quantize(self, logmel: torch.Tensor) -> torch.Tensor:
        """[..., n_mels] -> codes [..., K] by greedy residual nearest-neighbour search."""
        flat = logmel.reshape(-1, logmel.shape[-1]).float()
        residual = flat.clone()
        codes = []
        for cb in self.codebooks.float():
            idx = _nearest(residual, cb)
            residual = residual - cb[idx]
            codes.append(idx)
        return torch.stack(codes, dim=-1).reshape(*logmel.shape[:-1], len(codes))

    # The codec's VQ dequantize, unrelated to PreTrainedModel.dequantize (undoing weight quantisation),
    # which this model never needs: the name clash is deliberate, so the override check is silenced.
    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """codes [..., K] -> [..., n_mels] (sum of the chosen codewords)."""
        codes = codes.long().clamp(0, self.config.codebook_size - 1)
        cbs = self.codebooks.float()
        # K >= 1 tensor terms, so the int start value 0 never comes back
        return cast(torch.Tensor, sum(cbs[k][codes[..., k]] for k in range(codes.shape[-1])))

    # ---- the interface MusicGen calls ----
    def encode(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        bandwidth: float | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> MelCodecEncoderOutput | tuple:
        """[B, 1, S] (or [B, S]) audio -> codes [1, B, K, T]. `bandwidth` is accepted and ignored."""
        x = input_values
        if x.dim() == 3:
            if x.shape[1] != 1:
                raise ValueError(f"mel codec is mono, got {x.shape[1]} channels")
            x = x[:, 0]
        if padding_mask is not None:
            x = x * padding_mask.to(x.dtype)[..., : x.shape[-1]]
        codes = self.quantize(self.log_mel(x)).permute(0, 2, 1)[None]  # [1, B, K, T]
        scales = [None] * x.shape[0]
        if return_dict is False:
            return codes, scales
        return MelCodecEncoderOutput(audio_codes=codes, audio_scales=scales)

    def decode(
        self,
        audio_codes: torch.Tensor,
        audio_scales: list | None = None,
        padding_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> MelCodecDecoderOutput | tuple:
        """codes [1, B, K, T] -> audio [B, 1, T * hop]."""
        if audio_codes.dim() == 4:
            if audio_codes.shape[0] != 1:
                raise ValueError("mel codec expects one chunk (audio_codes.shape[0] == 1)")
            audio_codes = audio_codes[0]
        audio = self.mel_to_audio(self.dequantize(audio_codes.permute(0, 2, 1)))[:, None]
        if padding_mask is not None:
            audio = audio[..., : padding_mask.shape[-1]]
        if return_dict is False:
            return (audio,)
        return MelCodecDecoderOutput(audio_values=audio)

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        bandwidth: float | None = None,
        audio_codes: torch.Tensor | None = None,
        audio_scales: list | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> MelCodecOutput | tuple:
        """Encode (when audio is given) and decode; returns codes and the reconstruction."""
        if audio_codes is None:
            if input_values is None:
                raise ValueError("give input_values or audio_codes")
            enc = self.encode(input_values, padding_mask, bandwidth)
            # return_dict is not False, so these are the output objects
            assert isinstance(enc, MelCodecEncoderOutput) and enc.audio_codes is not None
            audio_codes = enc.audio_codes
        dec = self.decode(audio_codes, audio_scales, padding_mask)
        assert isinstance(dec, MelCodecDecoderOutput)
        audio = dec.audio_values
        if return_dict is False:
            return audio_codes, audio
        return MelCodecOutput(audio_codes=audio_codes, audio_values=audio)

    # ---- fitting ----
    @torch.no_grad()
    def fit(self, frames: torch.Tensor, iters: int = 20, seed: int = 0, verbose: bool = False) -> list[float]:
        """Fit the residual codebooks by k-means on log-mel frames [N, n_mels]; returns per-stage MSE."""
        residual = frames.float().clone()
        errors = []
        for k in range(self.config.num_codebooks):
            cb = kmeans(residual, self.config.codebook_size, iters=iters, seed=seed + k)
            residual = residual - cb[_nearest(residual, cb)]
            self.codebooks[k].copy_(cb)
            errors.append(float(residual.pow(2).mean()))
            if verbose:
                print(f"codebook {k}: residual mse {errors[-1]:.4f}", flush=True)
        return errors


def _nearest(x: torch.Tensor, cb: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
    """Index of the nearest codeword for each row of x (chunked to bound memory)."""
    cb_sq = cb.pow(2).sum(-1)
    out = []
    for i in range(0, x.shape[0], chunk):
        xi = x[i : i + chunk]
        out.append((cb_sq[None, :] - 2 * xi @ cb.T).argmin(-1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def kmeans(x: torch.Tensor, k: int, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """Plain Lloyd k-means with random-sample init; empty clusters are re-seeded from the worst-fit points."""
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    if n < k:
        x = x[torch.randint(n, (k,), generator=g)] + 1e-3 * torch.randn(k, x.shape[1], generator=g)
        n = k
    cb = x[torch.randperm(n, generator=g)[:k]].clone()
    for _ in range(iters):
        idx = _nearest(x, cb)
        sums = torch.zeros_like(cb).index_add_(0, idx, x)
        counts = torch.bincount(idx, minlength=k).to(x.dtype)
        alive = counts > 0
        cb[alive] = sums[alive] / counts[alive, None]
        dead = int((~alive).sum())
        if dead:
            err = (x - cb[idx]).pow(2).sum(-1)
            cb[~alive] = x[err.topk(dead).indices]
    return cb


class _CodebookSizeIdFilter(logging.Filter):
    """Drops transformers' "pad/bos/decoder_start_token_id ... got <vocab_size>" config warnings.

    MusicGen's pad/bos/decoder-start id is the codebook size by design (the decoder embeds
    `vocab_size + 1` codes; facebook/musicgen-small has vocab 2048 and pad 2048), and
    `MusicgenDecoderConfig.validate_token_ids` accepts it. But the composite `MusicgenConfig` runs
    the generic check (`0 <= id < vocab_size`) on the same decoder config and warns three times on
    every MusicGen, the hub's included. No config value avoids it without changing the model, so
    exactly that case is dropped: an id other than the codebook size is still reported.
    """

    PATTERN = re.compile(
        r"Model config: (pad|bos|decoder_start)_token_id must be `None` or an integer within the "
        r"vocabulary \(between 0 and (\d+)\), got (\d+)\."
    )

    def filter(self, record: logging.LogRecord) -> bool:
        m = self.PATTERN.match(str(record.msg))
        return not (m and int(m.group(3)) == int(m.group(2)) + 1)


def quiet_musicgen_config_warnings() -> None:
    """Install `_CodebookSizeIdFilter` on transformers' config logger (idempotent)."""
    log = logging.getLogger("transformers.configuration_utils")
    if not any(isinstance(f, _CodebookSizeIdFilter) for f in log.filters):
        log.addFilter(_CodebookSizeIdFilter())


def register() -> None:
    """Register the codec with the Auto classes (idempotent) and quiet MusicGen's by-design id warnings."""
    quiet_musicgen_config_warnings()
    try:
        AutoConfig.register(MODEL_TYPE, MelCodecConfig)
    except ValueError:
        pass
    try:
        AutoModel.register(MelCodecConfig, MelCodecModel)
    except ValueError:
        pass


register()

__all__ = ["MelCodecConfig", "MelCodecModel", "mel_filterbank", "kmeans", "register", "MODEL_TYPE"]
