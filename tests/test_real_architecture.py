"""The real musicgen-small architecture (587M parameters, random weights): the full path runs on it."""

import os

import numpy as np
import pytest
import torch

from smitin import architectures
from smitin.activations import capture
from smitin.generate import generate
from smitin.probes import train
from smitin.steering import Steer


@pytest.fixture
def all_threads():
    """The 587M-parameter model does use several cores (conftest sets one for tiny models)."""
    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_musicgen_small_extract_train_steer(all_threads):
    b = architectures.build("small", seed=0)
    assert b.layout.fingerprint() == "L24xH16xD64" and b.sample_rate == 32000
    rng = np.random.default_rng(0)
    sr = b.sample_rate
    t = np.arange(int(0.5 * sr)) / sr
    clips, labels, groups = [], [], []
    for i in range(8):  # 8 "tracks" of 0.5 s: with and without a noise-burst "drum" layer
        tone = 0.3 * np.sin(2 * np.pi * (110 + 30 * i) * t)
        burst = rng.standard_normal(len(t)) * np.exp(-20 * ((t * 8) % 1)) * 0.5
        clips += [tone + burst, tone]
        labels += [1, 0]
        groups += [f"track{i}", f"track{i}"]
    codes = b.encode(torch.tensor(np.array(clips), dtype=torch.float32))
    assert codes.shape == (16, 4, 25)
    z = torch.cat([capture(b, codes[i : i + 8]) for i in range(0, 16, 8)])[:, 0]
    assert z.shape == (16, 24, 16, 64)
    probes = train(z, np.array(labels), groups, val_fraction=0.25, meta={"trait": "drums", "model": b.name})
    assert probes.accuracy.shape == (24, 16) and torch.isfinite(probes.weight).all()
    probes.check(b)
    r = generate(b, None, steer=[Steer(probes, alpha=5.0)], duration=0.1, seed=0, progress=False)
    assert r.codes.shape == (1, 4, 5) and np.isfinite(r.audio).all()
    assert len(r.trace.c) == 8 and r.trace.edited.all()  # smitin's recipe: every step
    paper = Steer.from_recipe(probes, "paper", alpha=5.0)
    r = generate(b, None, steer=[paper], duration=0.1, seed=0, every=5, progress=False)
    assert r.trace.edited.tolist() == [True, False, False, False, False, True, False, False]
