"""Training batches in MusicGen's delay layout, the LM loss and the instrument-tagging head."""

from __future__ import annotations

import copy
import random

import torch

from smitin.tiny.config import TrainConfig
from smitin.tiny.training import TagHead, delay_pattern, lm_loss, make_batch, tag_targets


def test_delay_pattern_matches_generate_layout() -> None:
    codes = torch.arange(2 * 4 * 5).reshape(2, 4, 5)
    inputs, labels = delay_pattern(codes, pad=1024)
    assert inputs.shape == labels.shape == (2, 4, 8)
    # position t predicts codebook k of frame t - k; input at t is the label column t - 1
    assert labels[0, 2, 2] == codes[0, 2, 0] and labels[0, 2, 1] == -100
    assert (inputs[:, :, 0] == 1024).all()
    assert inputs[0, 0, 1] == codes[0, 0, 0]


def test_batches_take_the_crop_length_asked_for(bundle, clip) -> None:
    """Short crops (the fine-tuning stage's text-matters batches) keep the delay layout and null rows."""
    model, processor = bundle
    ex = clip(torch.randint(0, 1024, (4, 400), dtype=torch.int16))
    cfg = TrainConfig(batch_size=3)
    pad = model.config.decoder.pad_token_id
    for frames, null in ((50, 0.0), (250, 1.0)):
        batch = make_batch([ex], cfg, processor.tokenizer, random.Random(0), pad, null, frames)
        assert batch["decoder_input_ids"].shape == (3, 4, frames + 3)
        assert batch["labels"].shape == (3, 4, frames + 3)
        assert bool(batch["cond_mask"].any()) == (null == 0.0)  # null rows: all-zero condition mask
        assert torch.isfinite(lm_loss(model, batch))
    # an evaluation with and without captions must score the same crops
    a, b = (
        make_batch(
            [ex], cfg, processor.tokenizer, random.Random(1), pad, null, 50, caption_rng=random.Random(2)
        )
        for null in (0.0, 1.0)
    )
    assert torch.equal(a["labels"], b["labels"]) and not torch.equal(a["cond_mask"], b["cond_mask"])


def test_tag_targets_follow_the_delay_layout() -> None:
    tags = torch.zeros(1, 2, 10)
    tags[0, 0, 6:] = 1.0  # family 0 starts playing at frame 6
    valid = torch.ones(1, 10, dtype=torch.bool)
    valid[0, 8:] = False  # the crop ended at frame 8
    target, mask = tag_targets(tags, valid, 13)  # 10 frames + 4 codebooks - 1
    assert target.shape == (1, 13, 2) and mask.shape == (1, 13)
    # position t has heard frame t - 1: the first position that knows about frame 6 is 7
    assert target[0, 6, 0] == 0 and target[0, 7, 0] == 1
    assert not mask[0, 0] and mask[0, 1:9].all() and not mask[0, 9:].any()


def test_tagging_loss_trains_the_decoder(bundle, clip) -> None:
    """With activity on the clips, batches carry targets and the tag loss reaches the decoder layers."""
    model, processor = bundle
    model = copy.deepcopy(model)
    act = torch.zeros(2, 120, dtype=torch.bool)
    act[1, 40:] = True
    ex = clip(torch.randint(0, 1024, (4, 120)), activity=act)
    cfg = TrainConfig(batch_size=2)
    batch = make_batch(
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
    batch = make_batch(
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
    plain = make_batch(
        [ex], cfg, processor.tokenizer, random.Random(0), model.config.decoder.pad_token_id, 0.5, 100
    )
    assert "tags" not in plain
