"""The bundled tiny MusicGen loads offline like a hub checkpoint and generates through the stock API."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import AutoProcessor, MusicgenForConditionalGeneration, MusicgenProcessor

import smitin  # noqa: F401  (registers the codec, as users will do)
from smitin.codec import MelCodecModel
from smitin.tiny import BUNDLED_DIR, Example, delay_pattern, make_caption


def clip(codes: torch.Tensor, caption: str = "", activity: torch.Tensor | None = None) -> Example:
    """A pop clip with drums and without bass."""
    return Example(
        "s", ["drums"], ["bass"], {"drums": "drums"}, "pop", 100, "C major", caption, codes, activity
    )


@pytest.fixture(scope="module")
def bundle() -> tuple[MusicgenForConditionalGeneration, MusicgenProcessor]:
    model = MusicgenForConditionalGeneration.from_pretrained(BUNDLED_DIR).eval()
    return model, AutoProcessor.from_pretrained(BUNDLED_DIR)


def test_bundle_is_small_and_hub_like() -> None:
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


def test_delay_pattern_matches_generate_layout() -> None:
    codes = torch.arange(2 * 4 * 5).reshape(2, 4, 5)
    inputs, labels = delay_pattern(codes, pad=1024)
    assert inputs.shape == labels.shape == (2, 4, 8)
    # position t predicts codebook k of frame t - k; input at t is the label column t - 1
    assert labels[0, 2, 2] == codes[0, 2, 0] and labels[0, 2, 1] == -100
    assert (inputs[:, :, 0] == 1024).all()
    assert inputs[0, 0, 1] == codes[0, 0, 0]


def test_captions_name_present_instruments() -> None:
    ex = Example(
        song="s",
        present=["drums", "piano"],
        absent=["bass"],
        words={"drums": "drums", "piano": "electric piano"},
        style="pop",
        tempo=100,
        key="C major",
        caption="",
        codes=torch.zeros(4, 10, dtype=torch.int16),
    )
    rng = random.Random(0)
    for _ in range(20):
        text = make_caption(ex, rng)
        assert "drums" in text and "piano" in text
        assert "bass" not in text or "without bass" in text or "no bass" in text


def test_batches_take_the_crop_length_asked_for(bundle) -> None:
    """Short crops (the fine-tuning stage's text-matters batches) keep the delay layout and null rows."""
    from smitin.tiny import TrainConfig, _batch, lm_loss

    model, processor = bundle
    ex = clip(torch.randint(0, 1024, (4, 400), dtype=torch.int16))
    cfg = TrainConfig(batch_size=3)
    pad = model.config.decoder.pad_token_id
    for frames, null in ((50, 0.0), (250, 1.0)):
        batch = _batch([ex], cfg, processor.tokenizer, random.Random(0), pad, null, frames)
        assert batch["decoder_input_ids"].shape == (3, 4, frames + 3)
        assert batch["labels"].shape == (3, 4, frames + 3)
        assert bool(batch["cond_mask"].any()) == (null == 0.0)  # null rows: all-zero condition mask
        assert torch.isfinite(lm_loss(model, batch))
    # an evaluation with and without captions must score the same crops
    a, b = (
        _batch([ex], cfg, processor.tokenizer, random.Random(1), pad, null, 50, caption_rng=random.Random(2))
        for null in (0.0, 1.0)
    )
    assert torch.equal(a["labels"], b["labels"]) and not torch.equal(a["cond_mask"], b["cond_mask"])


def test_run_state_is_saved_without_pickle(tmp_path) -> None:
    """Resume files (clips, checkpoint) are safetensors + JSON and restore model, AdamW and RNGs."""
    from smitin.tiny import _load_checkpoint, _load_examples, _save_checkpoint, _save_examples

    ex = clip(
        torch.randint(0, 1024, (30, 4), dtype=torch.int16).T, "cap"
    )  # a strided view, like encoded clips
    blob = {"train": [ex, ex], "heldout": [ex], "families": ["bass", "drums"], "heldout_songs": ["s@1"]}
    _save_examples(blob, tmp_path / "codes")
    back = _load_examples(tmp_path / "codes")
    assert back["families"] == blob["families"] and len(back["train"]) == 2
    assert back["heldout"][0].words == ex.words and torch.equal(back["heldout"][0].codes, ex.codes)

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    rng = random.Random(5)
    _save_checkpoint(model, opt, {"step": 1, "elapsed": 2.0, "rng": rng.getstate()}, tmp_path / "ckpt")
    assert not list(tmp_path.glob("*.pt"))
    expected_next = torch.rand(3)
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    info = _load_checkpoint(model2, opt2, tmp_path / "ckpt")
    assert info["step"] == 1 and torch.equal(torch.rand(3), expected_next)  # torch RNG restored
    assert torch.equal(model2.weight, model.weight)
    for a, b in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values(), strict=True):
        assert all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)
    r2 = random.Random()
    version, internal, gauss = info["rng"]
    r2.setstate((version, tuple(internal), gauss))
    assert r2.random() == rng.random()
    assert _load_checkpoint(model2, opt2, tmp_path / "missing") is None


def test_captions_without_song_details() -> None:
    """caption_details=0: style and instruments only (tempo + key let a model memorise songs)."""
    ex = Example(
        "s",
        ["drums"],
        ["bass"],
        {"drums": "drums"},
        "funk",
        123,
        "D minor",
        "funk at 123 bpm in D minor",
        torch.zeros(4, 10, dtype=torch.int16),
    )
    rng = random.Random(0)
    texts = [make_caption(ex, rng, 0.0) for _ in range(50)]
    assert all("bpm" not in t and "D minor" not in t and "drums" in t for t in texts)
    assert any("bpm" in make_caption(ex, rng) for _ in range(50))  # the default keeps them


def test_clip_activity_follows_the_stems(tmp_path) -> None:
    """The tagging targets say where each stem of the clip plays, on the codec's 50 Hz frames."""
    import soundfile as sf

    from smitin.tiny import clip_activity

    sr, n = 16000, 4 * 16000
    rng = np.random.default_rng(0)
    drums = 0.3 * rng.standard_normal(n).astype(np.float32)
    drums[n // 2 :] = 0.0  # drums stop after 2 s
    bass = (0.3 * np.sin(2 * np.pi * 55 * np.arange(n) / sr)).astype(np.float32)
    paths = {}
    for name, x in (("drums", drums), ("bass", bass)):
        paths[name] = str(tmp_path / f"{name}.wav")
        sf.write(paths[name], x, sr)
    meta = {"stem_paths": paths}
    act = clip_activity(
        meta, ["drums", "bass"], ["bass", "drums", "piano"], 200, sample_rate=sr, frame_rate=50, gate_db=-35
    )
    assert act.shape == (3, 200) and act.dtype == torch.bool
    assert act[0].all()  # bass plays throughout
    assert act[1, :75].all() and not act[1, 125:].any()  # drums: first 2 s only (0.5 s smoothing)
    assert not act[2].any()  # piano is not in this clip
    only_bass = clip_activity(
        meta, ["bass"], ["bass", "drums"], 200, sample_rate=sr, frame_rate=50, gate_db=-35
    )
    assert only_bass[0].all() and not only_bass[1].any()  # a submix without drums has no drum targets


def test_tag_targets_follow_the_delay_layout() -> None:
    from smitin.tiny import tag_targets

    tags = torch.zeros(1, 2, 10)
    tags[0, 0, 6:] = 1.0  # family 0 starts playing at frame 6
    valid = torch.ones(1, 10, dtype=torch.bool)
    valid[0, 8:] = False  # the crop ended at frame 8
    target, mask = tag_targets(tags, valid, 13)  # 10 frames + 4 codebooks - 1
    assert target.shape == (1, 13, 2) and mask.shape == (1, 13)
    # position t has heard frame t - 1: the first position that knows about frame 6 is 7
    assert target[0, 6, 0] == 0 and target[0, 7, 0] == 1
    assert not mask[0, 0] and mask[0, 1:9].all() and not mask[0, 9:].any()


def test_tagging_loss_trains_the_decoder(bundle) -> None:
    """With activity on the clips, batches carry targets and the tag loss reaches the decoder layers."""
    import copy

    from smitin.tiny import TagHead, TrainConfig, _batch, lm_loss

    model, processor = bundle
    model = copy.deepcopy(model)
    act = torch.zeros(2, 120, dtype=torch.bool)
    act[1, 40:] = True
    ex = clip(torch.randint(0, 1024, (4, 120)), activity=act)
    cfg = TrainConfig(batch_size=2)
    batch = _batch(
        [ex], cfg, processor.tokenizer, random.Random(0), model.config.decoder.pad_token_id, 0.5, 100
    )
    assert batch["tags"].shape == (2, 2, 100) and batch["tags_valid"].all()
    layers = model.config.decoder.num_hidden_layers
    tagger = TagHead(model.config.decoder.hidden_size, ["bass", "drums"], (layers // 2, layers))
    ce, hidden = lm_loss(model, batch, hidden=True)
    assert len(hidden) == layers + 1
    tag, acc = tagger(hidden, batch)
    assert torch.isfinite(ce) and 0 < float(tag.detach()) < 5 and 0 <= float(acc) <= 1
    tag.backward()
    first = model.decoder.model.decoder.layers[0].self_attn.v_proj.weight.grad
    assert first is not None and first.abs().sum() > 0
    # tag_rows="null": only rows without a caption are tagged (the instruments must be heard)
    cfg = TrainConfig(batch_size=16, tag_rows="null")
    batch = _batch(
        [ex], cfg, processor.tokenizer, random.Random(0), model.config.decoder.pad_token_id, 0.5, 100
    )
    null_rows = ~batch["cond_mask"].bool().any(1)
    assert 0 < int(null_rows.sum()) < 16
    assert torch.equal(batch["tags_valid"].any(1), null_rows)
    with torch.no_grad():
        tag, _ = tagger(
            lm_loss(model, batch, hidden=True)[1], {**batch, "tags_valid": batch["tags_valid"] & False}
        )
    assert float(tag) == 0.0  # a batch with no tagged row adds nothing (and no NaN)
    # without activity the batch has no targets (the plain LM recipe is unchanged)
    ex.activity = None
    plain = _batch(
        [ex], cfg, processor.tokenizer, random.Random(0), model.config.decoder.pad_token_id, 0.5, 100
    )
    assert "tags" not in plain


def test_activity_cache_follows_the_clips(tmp_path) -> None:
    """Cached activity is reused for the same clips and recomputed when the clips change."""
    import soundfile as sf

    from smitin.tiny import TrainConfig, clip_activities

    sr = 16000
    path = tmp_path / "drums.wav"
    sf.write(path, 0.3 * np.random.default_rng(0).standard_normal(2 * sr).astype(np.float32), sr)
    songs = [{"id": "s", "stem_paths": {"drums": str(path)}}]
    clips = {"train": [clip(torch.zeros(4, 100, dtype=torch.int16))]}
    cfg = TrainConfig()
    first = clip_activities(songs, clips, ["bass", "drums"], cfg, tmp_path / "act", log=lambda *a: None)
    assert first["train"][0].shape == (2, 100) and first["train"][0][1].all()
    stamp = (tmp_path / "act.safetensors").stat().st_mtime_ns
    again = clip_activities(songs, clips, ["bass", "drums"], cfg, tmp_path / "act", log=lambda *a: None)
    assert torch.equal(again["train"][0], first["train"][0])
    assert (tmp_path / "act.safetensors").stat().st_mtime_ns == stamp  # read back, not recomputed
    longer = {"train": [clip(torch.zeros(4, 80, dtype=torch.int16))]}
    other = clip_activities(songs, longer, ["bass", "drums"], cfg, tmp_path / "act", log=lambda *a: None)
    assert other["train"][0].shape == (2, 80)  # other clips: recomputed, not the stale cache
