"""The mel codec: shapes, determinism, Auto registration, save/load, and MusicGen generate through it."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoConfig, AutoModel, MusicgenForConditionalGeneration

from smitin.codec import MODEL_TYPE, MelCodecConfig, MelCodecModel, kmeans, mel_filterbank

SR = 16000


def _audio(batch: int = 2, seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(SR * seconds)) / SR
    tones = torch.stack([0.3 * torch.sin(2 * math.pi * (220 * (b + 1)) * t) for b in range(batch)])
    return (tones + 0.02 * torch.randn(tones.shape, generator=g))[:, None]


@pytest.fixture(scope="module")
def codec() -> MelCodecModel:
    m = MelCodecModel(MelCodecConfig(codebook_size=64))
    frames = m.log_mel(_audio(3, 2.0)[:, 0]).reshape(-1, m.config.n_mels)
    m.fit(frames, iters=5)
    return m


def test_filterbank_covers_spectrum() -> None:
    fb = mel_filterbank(SR, 1024, 80)
    assert fb.shape == (80, 513)
    assert (fb.sum(1) > 0).all()


def test_encode_decode_shapes(codec: MelCodecModel) -> None:
    x = _audio(2, 1.0)
    enc = codec.encode(x)
    assert enc.audio_codes.shape == (1, 2, 4, 50)
    assert enc.audio_codes.dtype == torch.long
    assert enc.audio_scales == [None, None]
    assert int(enc.audio_codes.max()) < 64
    out = codec.decode(enc.audio_codes, enc.audio_scales).audio_values
    assert out.shape == (2, 1, 16000)
    # odd lengths round up to whole frames
    assert codec.encode(x[..., :1000]).audio_codes.shape[-1] == 4
    assert codec(input_values=x).audio_values.shape == (2, 1, 16000)


def test_decode_is_deterministic_and_reconstructs(codec: MelCodecModel) -> None:
    x = _audio(2, 1.0)
    codes = codec.encode(x).audio_codes
    a = codec.decode(codes).audio_values
    b = codec.decode(codes).audio_values
    assert torch.equal(a, b)
    assert torch.equal(codec.encode(x).audio_codes, codes)
    # different audio -> different codes; reconstruction keeps the log-mel close
    assert not torch.equal(codes[0, 0], codes[0, 1])
    err = (codec.log_mel(a[:, 0]) - codec.log_mel(x[:, 0])).abs().mean()
    assert err < 1.0


def test_kmeans_reduces_error() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 8, generator=g)
    cb = kmeans(x, 16, iters=10)
    assert cb.shape == (16, 8)
    err = (x[:, None] - cb[None]).pow(2).sum(-1).min(1).values.mean()
    assert err < x.pow(2).sum(-1).mean()


def test_registration_and_roundtrip(codec: MelCodecModel, tmp_path) -> None:
    codec.save_pretrained(tmp_path)
    cfg = AutoConfig.from_pretrained(tmp_path)
    assert cfg.model_type == MODEL_TYPE and cfg.frame_rate == 50
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, MelCodecModel)
    assert torch.equal(loaded.codebooks, codec.codebooks)
    x = _audio(1, 0.5)
    assert torch.equal(loaded.encode(x).audio_codes, codec.encode(x).audio_codes)


def test_fresh_codec_has_nonzero_codebooks() -> None:
    m = AutoModel.from_config(MelCodecConfig(codebook_size=32))
    assert m.codebooks.abs().sum() > 0


def test_musicgen_generates_through_codec(codec: MelCodecModel, tmp_path) -> None:
    from smitin.tiny import TinySizes, build_model, build_processor, build_tokenizer, save_bundle

    tok = build_tokenizer(["rock with drums"])
    sizes = TinySizes(layers=1, heads=2, hidden=32, ffn=64, text_layers=1, text_hidden=16, text_heads=2)
    fitted = codec.codebooks.clone()
    model = build_model(tok, sizes, codec=codec).eval()
    assert torch.equal(model.audio_encoder.codebooks, fitted), (
        "MusicGen's post_init must keep fitted codebooks"
    )
    save_bundle(model, build_processor(tok), tmp_path)
    model = MusicgenForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert isinstance(model.audio_encoder, MelCodecModel)
    assert torch.equal(model.audio_encoder.codebooks, fitted), "loading must not re-initialise codebooks"
    ids = tok(["rock with drums"], return_tensors="pt")
    torch.manual_seed(0)
    audio = model.generate(**ids, max_new_tokens=13, guidance_scale=3.0)
    assert audio.shape == (1, 1, 10 * 320)  # N + 1 - K frames
    prompt = _audio(1, 0.2)
    out = model.generate(input_values=prompt, **ids, max_new_tokens=10)
    assert out.shape[-1] > prompt.shape[-1]
