"""Packing a run's caches for a lent GPU is lossless: the unpacked caches equal the originals."""

from __future__ import annotations

import torch

from smitin.tiny.checkpoints import load_state, save_state
from smitin.tiny.travel import pack_activity, pack_codes, pack_run, unpack_activity, unpack_codes, unpack_run


def test_codes_round_trip_at_five_bytes_a_frame() -> None:
    g = torch.Generator().manual_seed(0)
    clips = [torch.randint(0, 1024, (4, n), generator=g, dtype=torch.int16) for n in (7, 1, 300)]
    clips[0][:, 0] = 1023  # the largest code sets every bit of its field
    packed, lengths = pack_codes(clips)
    assert packed.dtype == torch.uint8 and packed.numel() == 5 * 308
    back = unpack_codes(packed, lengths)
    assert all(torch.equal(a, b) and b.dtype == torch.int16 for a, b in zip(clips, back, strict=True))


def test_codes_out_of_range_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="1024"):
        pack_codes([torch.full((4, 3), 1024, dtype=torch.int16)])


def test_activity_round_trip_at_one_byte_a_frame() -> None:
    g = torch.Generator().manual_seed(1)
    clips = [torch.rand(7, n, generator=g) < 0.4 for n in (5, 40)]
    bits, lengths = pack_activity(clips)
    assert bits.numel() == 45
    back = unpack_activity(bits, lengths, 7)
    assert all(torch.equal(a.to(torch.uint8), b) for a, b in zip(clips, back, strict=True))


def test_run_folder_round_trip(tmp_path) -> None:
    """pack_run -> unpack_run rebuilds codes and activity pairs equal to the originals, JSON included."""
    run = tmp_path / "run"
    run.mkdir()
    codes = {f"train/{i}": torch.randint(0, 1024, (4, 20 + i), dtype=torch.int16) for i in range(3)}
    codes["heldout/0"] = torch.randint(0, 1024, (4, 9), dtype=torch.int16)
    info = {"families": ["bass", "drums"], "heldout_songs": ["x"], "train": [{}] * 3, "heldout": [{}]}
    save_state(codes, info, run / "codes")
    acts = {k: (torch.rand(2, v.shape[1]) < 0.5).to(torch.uint8) for k, v in codes.items()}
    save_state(acts, {"families": ["bass", "drums"], "gate_db": -35.0}, run / "activity")
    (run / "codec").mkdir()
    (run / "codec" / "config.json").write_text("{}")
    packed = pack_run(run, tmp_path / "packed")
    assert not (packed / "codes.safetensors").exists()
    out = unpack_run(packed, tmp_path / "again")
    for name, original in (("codes", codes), ("activity", acts)):
        state = load_state(out / name)
        assert state is not None
        assert state[0].keys() == original.keys()
        assert all(torch.equal(state[0][k], original[k]) for k in original)
    assert load_state(out / "codes")[1] == info  # type: ignore[index]
    assert (out / "codec" / "config.json").exists()


def test_weights_split_under_the_limit_and_join_exactly(tmp_path) -> None:
    from safetensors.torch import save_file

    from smitin.tiny.travel import join_weights, split_weights

    weights = {f"layer{i}.weight": torch.randn(64, 64) for i in range(5)}  # 16 KiB each
    (tmp_path / "m").mkdir()
    save_file(weights, str(tmp_path / "m" / "model.safetensors"))
    paths = split_weights(tmp_path / "m", tmp_path / "out", max_bytes=40 * 1024)
    assert len(paths) == 3 and all(p.stat().st_size < 41 * 1024 for p in paths)
    back = join_weights(tmp_path / "out")
    assert back.keys() == weights.keys() and all(torch.equal(back[k], weights[k]) for k in weights)
