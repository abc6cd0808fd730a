import json

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from smitin.backbone import ModelError, load
from smitin.generate import continue_audio, generate, max_new_tokens
from smitin.steering import Steer


def test_duration_sets_the_number_of_frames(tiny):
    r = generate(tiny, None, duration=0.4, progress=False)
    assert max_new_tokens(tiny, 0.4) == 20 + 3
    assert r.codes.shape == (1, 4, 20) and r.audio.shape == (1, 20 * 160)
    assert len(r.trace.c) == 0  # nothing steered, nothing traced


def test_continuation_mixes_to_mono_and_resamples(tiny, probes_for, tmp_path):
    sr = 22050
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1).astype(np.float32)
    sf.write(tmp_path / "prompt.wav", stereo, sr)
    steer = [Steer(probes_for(tiny.layout), alpha=2.0)]
    r = continue_audio(tiny, tmp_path / "prompt.wav", steer=steer, duration=0.3, progress=False)
    assert r.prompt_seconds == pytest.approx(1.0)
    assert r.codes.shape == (1, 4, 50 + 15)  # the prompt's frames, then the new ones
    raw = continue_audio(tiny, stereo, sr, steer=steer, duration=0.3, progress=False)
    assert np.array_equal(r.audio, raw.audio)
    mono = soxr.resample(stereo.mean(1), sr, tiny.sample_rate)
    assert torch.equal(tiny.encode(mono[None]), r.codes[:, :, :50])  # the prompt the model saw
    with pytest.raises(ValueError, match="sample_rate"):
        continue_audio(tiny, stereo, steer=steer)


def test_batch_and_save(tiny, probes_for, tmp_path):
    r = generate(tiny, None, steer=[Steer(probes_for(tiny.layout))], batch=2, duration=0.2, progress=False)
    assert r.audio.shape[0] == 2 and r.trace.c.shape[1] == 2
    paths = r.save(tmp_path / "out.wav", tmp_path / "trace.json")
    assert [p.name for p in paths] == ["out-0.wav", "out-1.wav"]
    audio, sr = sf.read(paths[1])
    assert sr == tiny.sample_rate and len(audio) == r.audio.shape[1]
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert trace["settings"]["traits"][0]["trait"] == "drums"
    first = trace["steps"][0]
    assert first["step"] == 0 and first["time"] == 0 and len(first["traits"]["drums"]["C"]) == 2
    assert trace["steps"][5]["time"] == pytest.approx(0.1)


def test_text_prompts_need_a_processor(tiny):
    with pytest.raises(ModelError, match="no processor"):
        generate(tiny, "drums", duration=0.1, progress=False)


def test_bundled_model_steered_text_to_music(probes_for):
    b = load()
    assert b.processor is not None and b.layout.layers >= 4 and b.layout.heads >= 4
    r = generate(
        b,
        "a rock song with drums",
        steer=[Steer(probes_for(b.layout), alpha=5.0)],
        duration=0.5,
        progress=False,
    )
    assert r.audio.shape == (1, b.sample_rate // 2) and np.isfinite(r.audio).all()
    assert r.trace.edited.all()  # smitin's recipe edits every step
    paper = generate(
        b,
        "a rock song",
        steer=[Steer.from_recipe(b_probes := probes_for(b.layout), "paper")],
        duration=0.5,
        every=5,
        progress=False,
    )
    assert paper.trace.edited[:10].tolist() == [True] + [False] * 4 + [True] + [False] * 4
    assert paper.trace.settings["traits"][0]["heads"] == "soft" and b_probes.trait == "drums"


def test_a_list_of_prompts_is_continued_in_one_batch(tiny):
    rng = np.random.default_rng(0)
    a, b = ((0.2 * rng.standard_normal(n)).clip(-1, 1).astype(np.float32) for n in (8000, 9000))
    r = continue_audio(tiny, [a, b], 8000, duration=0.2, progress=False)
    assert r.audio.shape[0] == 2 and r.prompt_seconds == pytest.approx(1.0)  # cut to the shortest
    assert torch.equal(r.codes[:, :, :50], tiny.encode(np.stack([a, b[:8000]])))
    with pytest.raises(ValueError, match="2 audio prompts but 3 text prompts"):
        continue_audio(tiny, [a, b], 8000, ["x", "y", "z"])
