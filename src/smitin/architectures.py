"""MusicGen architectures built in code, with random weights, for tests and benchmarks.

No weights can be downloaded in CI, yet smitin must be checked on the real shapes. These configs
mirror facebook/musicgen-{small,medium,large,melody} (decoder, T5-base text encoder, 32 kHz
EnCodec); "tiny" is a seconds-to-build model with the same classes. A fresh EnCodec has all-zero
codebooks (codes and audio would ignore the input), so codebooks are filled with noise.
"""

from __future__ import annotations

import torch
from transformers import (
    EncodecConfig,
    MusicgenConfig,
    MusicgenDecoderConfig,
    MusicgenForConditionalGeneration,
    MusicgenMelodyConfig,
    MusicgenMelodyDecoderConfig,
    MusicgenMelodyForConditionalGeneration,
    T5Config,
)

from .backbone import Backbone

# decoder (hidden, layers, heads): the published checkpoints' shapes
DECODERS = {
    "small": (1024, 24, 16),
    "medium": (1536, 48, 24),
    "large": (2048, 48, 32),
    "melody": (1536, 48, 24),
}
ARCHITECTURES = ("tiny", "tiny-melody", *DECODERS)


def _t5_base() -> T5Config:
    return T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)


def _encodec_32khz() -> EncodecConfig:
    return EncodecConfig(
        sampling_rate=32000,
        audio_channels=1,
        num_filters=64,
        hidden_size=128,
        upsampling_ratios=[8, 5, 4, 4],
        codebook_size=2048,
        target_bandwidths=[2.2],
        num_lstm_layers=2,
        norm_type="weight_norm",
        use_causal_conv=False,
        pad_mode="reflect",
        compress=2,
        residual_kernel_size=3,
        normalize=False,
    )


def config(arch: str = "tiny", *, layers: int = 2, heads: int = 4, hidden: int = 32):
    """The transformers config for `arch`; `layers/heads/hidden` size the tiny one only."""
    if arch in ("tiny", "tiny-melody"):
        text = T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
        audio = EncodecConfig(
            sampling_rate=8000,
            audio_channels=1,
            num_filters=4,
            hidden_size=16,
            upsampling_ratios=[5, 4, 4, 2],
            codebook_size=64,
            codebook_dim=16,
            num_residual_layers=1,
            num_lstm_layers=1,
            target_bandwidths=[1.2],
            normalize=False,
        )
        return _musicgen(arch == "tiny-melody", text, audio, _decoder(64, 1024, layers, heads, hidden), 20)
    if arch not in DECODERS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    hidden, n_layers, n_heads = DECODERS[arch]
    decoder = _decoder(2048, 2048, n_layers, n_heads, hidden, ffn=4 * hidden)
    return _musicgen(arch == "melody", _t5_base(), _encodec_32khz(), decoder, 235)


def _decoder(
    vocab: int, positions: int, layers: int, heads: int, hidden: int, ffn: int | None = None
) -> dict:
    """Decoder config fields; the pad/start token is the extra id `vocab`, as in the checkpoints."""
    return dict(
        vocab_size=vocab,
        max_position_embeddings=positions,
        num_hidden_layers=layers,
        ffn_dim=ffn or 2 * hidden,
        num_attention_heads=heads,
        hidden_size=hidden,
        num_codebooks=4,
        pad_token_id=vocab,
        bos_token_id=vocab,
        decoder_start_token_id=vocab,
    )


def _musicgen(melody: bool, text, audio, decoder: dict, chroma_length: int):
    if melody:
        return MusicgenMelodyConfig(
            text_encoder=text,
            audio_encoder=audio,
            decoder=MusicgenMelodyDecoderConfig(**decoder),
            num_chroma=12,
            chroma_length=chroma_length,
        )
    return MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=MusicgenDecoderConfig(**decoder))


@torch.no_grad()
def _seed_codebooks(encodec, gen: torch.Generator, seconds: float = 2.0) -> None:
    """Fill each residual codebook with encoder frames of varied test audio.

    Random-normal codebooks sit far from a random encoder's outputs, so every frame would map to
    one code; sampling the codebooks from real residuals makes codes follow the audio.
    """
    sr = encodec.config.sampling_rate
    t = torch.arange(int(seconds * sr)) / sr
    clips = []
    for _ in range(4):
        freqs = 60 + 2000 * torch.rand(3, 1, generator=gen)
        tone = torch.sin(2 * torch.pi * freqs * t).sum(0)
        env = (
            torch.rand(1, generator=gen) + torch.sin(2 * torch.pi * 3 * torch.rand(1, generator=gen) * t)
        ).abs()
        noise = torch.randn(t.shape, generator=gen) * torch.rand(1, generator=gen)
        clips.append(0.3 * (tone * env + noise))
    frames = (
        encodec.encoder(torch.stack(clips)[:, None]).transpose(1, 2).reshape(-1, encodec.config.codebook_dim)
    )
    residual = frames
    for layer in encodec.quantizer.layers:
        embed = layer.codebook.embed
        pick = torch.randint(len(residual), (embed.shape[0],), generator=gen)
        jitter = 0.05 * residual.std() * torch.randn(embed.shape, generator=gen)
        embed.copy_(residual[pick] + jitter)
        nearest = torch.cdist(residual, embed).argmin(-1)
        residual = residual - embed[nearest]


def build(arch: str = "tiny", *, seed: int = 0, device: str = "cpu", **tiny_sizes) -> Backbone:
    """A randomly initialised MusicGen of the given architecture, wrapped as a Backbone."""
    cfg = config(arch, **tiny_sizes)
    torch.manual_seed(seed)
    melody = arch in ("melody", "tiny-melody")
    cls = MusicgenMelodyForConditionalGeneration if melody else MusicgenForConditionalGeneration
    model = cls(cfg)
    if hasattr(model.audio_encoder, "quantizer"):
        _seed_codebooks(model.audio_encoder, torch.Generator().manual_seed(seed + 1))
    model.generation_config.pad_token_id = cfg.decoder.pad_token_id
    model.generation_config.decoder_start_token_id = cfg.decoder.decoder_start_token_id
    # PreTrainedModel.to is wrapped by functools.wraps(nn.Module.to), whose stub type does not bind self
    return Backbone(model.to(device), None, name=f"random-{arch}")  # type: ignore[arg-type]
