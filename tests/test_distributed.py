"""The rank arithmetic of smitin.distributed (the multi-process runs are in tests/cli/test_batch.py)."""

import pytest

from smitin.distributed import World, rounds, world_from_env


def test_world_from_the_launchers_variables():
    assert world_from_env({}) == World(0, 1, 0)
    w = world_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (w.rank, w.size, w.local_rank, w.distributed, w.main) == (3, 4, 1, True, False)
    assert w.device("cuda") == "cuda:1" and w.device("cpu") == "cpu" and w.tag() == "[rank 3/4] "
    with pytest.raises(ValueError, match="RANK=4 must be in 0..WORLD_SIZE-1"):
        world_from_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not a whole number"):
        world_from_env({"WORLD_SIZE": "two"})


def test_items_and_batches_are_split_by_fixed_index():
    assert World(1, 3).mine(8) == [1, 4, 7]
    every = sorted(i for r in range(3) for i in World(r, 3).mine(8))
    assert every == list(range(8))
    # 10 items in batches of 3 -> batches 0..3; rank 1 of 2 does batches 1 and 3
    assert rounds(World(1, 2), 10, 3) == [(1, [3, 4, 5], 6), (3, [9], 10)]
    assert rounds(World(0, 2), 10, 3) == [(0, [0, 1, 2], 6), (2, [6, 7, 8], 10)]
    assert rounds(World(), 4, 3) == [(0, [0, 1, 2], 3), (1, [3], 4)]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number; launch with torchrun"),
        ({"WORLD_SIZE": "2", "RANK": "5"}, "RANK=5 must be in 0..WORLD_SIZE-1 (WORLD_SIZE=2)"),
        ({"WORLD_SIZE": "0"}, "must be in 0..WORLD_SIZE-1 (WORLD_SIZE=0)"),
        ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "-1"}, "LOCAL_RANK=-1 must be in 0..WORLD_SIZE-1"),
        ({"WORLD_SIZE": "2", "RANK": "x"}, "RANK='x' is not a whole number"),
    ],
)
def test_bad_launcher_variables_are_refused_cleanly(env, message, monkeypatch, capsys, tmp_path):
    from helpers import run_cli

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    prompts = tmp_path / "p.txt"
    prompts.write_text("x\n")
    for argv in (["generate", "x"], ["generate", "--prompts", str(prompts), "--out", str(tmp_path / "o")]):
        code, text = run_cli(argv, capsys)
        assert code == 2 and message in text and "Traceback" not in text, text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "SMITIN_DIST_TIMEOUT='abc' is not a number of seconds"),
        ("-5", "SMITIN_DIST_TIMEOUT='-5' must be a positive number of seconds"),
        ("nan", "SMITIN_DIST_TIMEOUT='nan' must be a positive number of seconds"),
        ("1e308", "SMITIN_DIST_TIMEOUT='1e308' must be a positive number of seconds (up to ten years)"),
    ],
)
def test_a_bad_barrier_timeout_is_refused_cleanly(value, message, monkeypatch, capsys, tmp_path):
    """Under a launcher (rank 0 of 2), before any process group or model."""
    from helpers import run_cli

    for name, v in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "SMITIN_DIST_TIMEOUT": value}.items():
        monkeypatch.setenv(name, v)
    prompts = tmp_path / "p.txt"
    prompts.write_text("x\n")
    code, text = run_cli(["generate", "--prompts", str(prompts), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and message in text and "Traceback" not in text, text
