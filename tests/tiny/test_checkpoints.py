"""A run's resume files are safetensors + JSON (no pickle) and restore what they saved."""

from __future__ import annotations

import random

import torch

from smitin.tiny.checkpoints import load_checkpoint, load_examples, save_checkpoint, save_examples


def test_run_state_is_saved_without_pickle(tmp_path, clip) -> None:
    """Resume files (clips, checkpoint) are safetensors + JSON and restore model, AdamW and RNGs."""
    ex = clip(
        torch.randint(0, 1024, (30, 4), dtype=torch.int16).T, "cap"
    )  # a strided view, like encoded clips
    blob = {"train": [ex, ex], "heldout": [ex], "families": ["bass", "drums"], "heldout_songs": ["s@1"]}
    save_examples(blob, tmp_path / "codes")
    back = load_examples(tmp_path / "codes")
    assert back["families"] == blob["families"] and len(back["train"]) == 2
    assert back["heldout"][0].words == ex.words and torch.equal(back["heldout"][0].codes, ex.codes)

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    rng = random.Random(5)
    save_checkpoint(model, opt, {"step": 1, "elapsed": 2.0, "rng": rng.getstate()}, tmp_path / "ckpt")
    assert not list(tmp_path.glob("*.pt"))
    expected_next = torch.rand(3)
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    info = load_checkpoint(model2, opt2, tmp_path / "ckpt")
    assert info["step"] == 1 and torch.equal(torch.rand(3), expected_next)  # torch RNG restored
    assert torch.equal(model2.weight, model.weight)
    for a, b in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values(), strict=True):
        assert all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)
    r2 = random.Random()
    version, internal, gauss = info["rng"]
    r2.setstate((version, tuple(internal), gauss))
    assert r2.random() == rng.random()
    assert load_checkpoint(model2, opt2, tmp_path / "missing") is None
