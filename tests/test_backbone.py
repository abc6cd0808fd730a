import json

import numpy as np
import pytest
import torch

from smitin import architectures
from smitin.backbone import Backbone, HeadLayout, ModelError, load


def test_layout_read_from_the_model(tiny):
    assert tiny.layout == HeadLayout(layers=2, heads=4, head_dim=8)
    assert len(tiny.out_projs) == 2
    assert tiny.sample_rate == 8000 and tiny.frame_rate == 50 and tiny.num_codebooks == 4


@pytest.mark.parametrize(
    "arch, layout",
    [
        ("small", (24, 16, 64)),
        ("medium", (48, 24, 64)),
        ("large", (48, 32, 64)),
        ("melody", (48, 24, 64)),
    ],
)
def test_real_architectures_head_layout(arch, layout):
    from transformers import MusicgenForConditionalGeneration, MusicgenMelodyForConditionalGeneration

    cls = MusicgenMelodyForConditionalGeneration if arch == "melody" else MusicgenForConditionalGeneration
    with torch.device("meta"):
        model = cls(architectures.config(arch))
    b = Backbone(model, name=arch)
    assert (b.layout.layers, b.layout.heads, b.layout.head_dim) == layout
    assert b.is_melody == (arch == "melody")
    # cross-attention is never among the hooked modules
    assert all(
        p is layer.self_attn.out_proj
        for p, layer in zip(b.out_projs, model.decoder.model.decoder.layers, strict=True)
    )


def test_delay_pattern_teacher_forcing(tiny):
    codes = torch.arange(4 * 6).reshape(1, 4, 6) % 60
    ids = tiny.delayed_input_ids(codes).reshape(4, 7)
    pad = tiny.pad_token_id
    for t in range(7):
        for k in range(4):
            frame = t - 1 - k
            assert ids[k, t] == (codes[0, k, frame] if frame >= 0 else pad)


def test_codes_follow_the_audio(tiny):
    a = torch.randn(2, 8000)
    codes = tiny.encode(a)
    assert codes.shape == (2, 4, 50)
    assert not torch.equal(codes[0], codes[1])
    assert tiny.decode(codes).shape == (2, 8000)


def test_hooks_that_return_nothing_leave_outputs_identical(tiny):
    codes = tiny.encode(torch.randn(1, 4000))
    ids = tiny.delayed_input_ids(codes)
    with torch.no_grad():
        ref = tiny.model(**tiny.null_condition(1), decoder_input_ids=ids).logits
        seen = []
        with tiny.head_hooks(lambda layer, x: seen.append((layer, x.shape))):
            out = tiny.model(**tiny.null_condition(1), decoder_input_ids=ids).logits
    assert torch.equal(ref, out)
    assert [s[0] for s in seen] == [0, 1] and seen[0][1][-1] == 32
    n = len(seen)
    with torch.no_grad():
        tiny.model(**tiny.null_condition(1), decoder_input_ids=ids)
    assert len(seen) == n  # the hooks are gone on exit


def test_load_a_saved_folder(tiny, tmp_path):
    tiny.model.save_pretrained(tmp_path / "m")
    b = load(tmp_path / "m")
    assert b.layout == tiny.layout
    assert b.weights_digest() == tiny.weights_digest()


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(ModelError, match="there is no such folder"):
        load(tmp_path / "nothing-here")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="smitin steers MusicGen"):
        load(tmp_path / "bert")


def test_decoder_steps_reports_the_cache_length(tiny):
    seen = []
    with tiny.decoder_steps(lambda past, ids: seen.append((past, None if ids is None else ids.shape[1]))):
        tiny.model.generate(**tiny.null_condition(1), max_new_tokens=6, do_sample=False, guidance_scale=1.0)
    pasts = [p for p, _ in seen]
    assert pasts[0] == 0 and pasts[-1] > 0  # a prefill first, then steps with a growing cache
    steps = [p for p in pasts if p]
    assert steps == sorted(steps) and len(steps) == 5  # one call per new position after the prefill
    n = len(seen)
    tiny.model.generate(**tiny.null_condition(1), max_new_tokens=3, do_sample=False, guidance_scale=1.0)
    assert len(seen) == n  # the hook is gone on exit


def test_round_trip_keeps_the_length(tiny):
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((3, 3001))).astype(np.float32)
    out = tiny.round_trip(audio, batch=2)
    assert out.shape == audio.shape and out.dtype == np.float32
    assert np.allclose(out[1], tiny.round_trip(audio[1:2])[0], atol=1e-5)  # batching changes nothing
