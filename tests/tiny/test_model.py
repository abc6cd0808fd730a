"""The bundled tiny MusicGen loads offline like a hub checkpoint and generates through the stock API."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from transformers import MusicgenForConditionalGeneration, MusicgenProcessor

from smitin.backbone import BUNDLED_PATH
from smitin.codec import MelCodecModel
from smitin.tiny import BUNDLED_DIR


def test_bundle_is_small_and_hub_like() -> None:
    assert BUNDLED_DIR == BUNDLED_PATH.resolve()  # the package data folder that `smitin.load()` reads
    names = {p.name for p in BUNDLED_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= names
    assert sum(p.stat().st_size for p in BUNDLED_DIR.iterdir()) <= 50 * 2**20


def test_bundle_architecture(bundle) -> None:
    model, processor = bundle
    assert isinstance(model.audio_encoder, MelCodecModel)
    assert isinstance(processor, MusicgenProcessor)
    cfg = model.config.decoder
    assert cfg.num_hidden_layers >= 4 and cfg.num_attention_heads >= 4
    assert model.config.audio_encoder.frame_rate == 50
    assert processor.feature_extractor.sampling_rate == model.config.sampling_rate == 16000


def test_loading_the_bundle_warns_nothing_about_its_token_ids() -> None:
    """MusicGen's pad/bos/decoder-start id is the codebook size by design: no config warning for it."""
    from transformers.utils import logging as hf_logging

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, root = Keep(), logging.getLogger("transformers")
    level = root.level  # tests/conftest.py quiets transformers to errors: listen to warnings here
    root.setLevel(logging.WARNING)
    root.addHandler(handler)
    hf_logging.warning_once.cache_clear()  # each message is logged once per process: make it count here
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = MusicgenForConditionalGeneration.from_pretrained(BUNDLED_DIR)
            # an id that is not the codebook size is still reported
            logging.getLogger("transformers.configuration_utils").warning(
                "Model config: pad_token_id must be `None` or an integer within the vocabulary "
                "(between 0 and 1023), got 5000. This may result in unexpected behavior."
            )
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert model.config.decoder.pad_token_id == model.config.decoder.vocab_size == 1024
    said = [r.getMessage() for r in records] + [str(w.message) for w in caught]
    assert not [m for m in said if "_token_id must be" in m and "got 1024" in m], said
    assert any("got 5000" in m for m in said)


def test_text_to_music_one_second(bundle) -> None:
    model, processor = bundle
    inputs = processor(text=["a rock groove with drums and bass"], padding=True, return_tensors="pt")
    torch.manual_seed(0)
    audio = model.generate(**inputs, max_new_tokens=53, guidance_scale=3.0)
    assert audio.shape == (1, 1, 16000)
    assert torch.isfinite(audio).all() and audio.abs().max() > 0


def test_audio_prompt_continuation(bundle) -> None:
    model, processor = bundle
    t = np.arange(8000) / 16000
    prompt = (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    inputs = processor(
        audio=[prompt], sampling_rate=16000, text=["add drums"], padding=True, return_tensors="pt"
    )
    torch.manual_seed(0)
    audio = model.generate(**inputs, max_new_tokens=28, guidance_scale=3.0)
    # 25 prompt frames + 25 new frames (28 + 1 - 4)
    assert audio.shape == (1, 1, 50 * 320)
    out = processor.batch_decode(audio, padding_mask=inputs["padding_mask"])
    assert out[0].shape == (1, 50 * 320)
