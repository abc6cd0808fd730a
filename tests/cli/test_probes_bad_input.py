"""`smitin probes train | extract | show` with hostile input: exit 2, one message, no traceback, nothing written."""

from __future__ import annotations

import pytest

from smitin.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny):
    path = tmp_path_factory.mktemp("model") / "tiny"
    tiny.model.save_pretrained(path)
    return path


def refused(argv, capsys, *words) -> str:
    """Run the command; it must exit 2 with `smitin: error:` and every word, and no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("smitin: error: ") and "Traceback" not in err, err
    err = err[err.index("smitin: error: ") :]  # after the model's loading bar, if any
    for word in words:
        assert word in err, err
    return err


BOTH, TRAIN = ("train", "extract"), ("train",)


@pytest.mark.parametrize(
    ("commands", "option", "value", "words"),
    [
        (BOTH, "--seconds", "0", ("--seconds", "positive")),
        (BOTH, "--seconds", "-1", ("--seconds", "positive")),
        (BOTH, "--seconds", "nan", ("--seconds", "nan")),
        (BOTH, "--seconds", "inf", ("--seconds", "inf")),
        (BOTH, "--batch-size", "0", ("--batch-size", "at least 1")),
        (BOTH, "--last", "0", ("--last", "at least 1")),
        (BOTH, "--gate-db", "nan", ("--gate-db", "nan")),
        (BOTH, "--max-per-track", "0", ("--max-per-track", "at least 1")),
        (TRAIN, "--val-fraction", "0", ("--val-fraction", "between 0 and 1")),
        (TRAIN, "--val-fraction", "1", ("--val-fraction", "between 0 and 1")),
        (TRAIN, "--val-fraction", "nan", ("--val-fraction", "nan")),
        (TRAIN, "--C", "0", ("--C", "positive")),
        (TRAIN, "--C", "-1", ("--C", "positive")),
        (TRAIN, "--C", "inf", ("--C", "positive")),
    ],
)
def test_bad_numbers_are_refused_before_the_model_loads(commands, option, value, words, tmp_path, capsys):
    missing = tmp_path / "no-model"  # loading it would fail with "cannot load": it is never tried
    for command in commands:
        argv = ["probes", command, "--model", str(missing), "--data", str(tmp_path), "--trait", "drums",
                "--cache", str(tmp_path / "cache"), option, value]  # fmt: skip
        if command == "train":
            argv += ["--out", str(tmp_path / "p.safetensors")]
        assert "cannot load" not in refused(argv, capsys, *words)
        assert list(tmp_path.iterdir()) == []  # no cache, no probe file


@pytest.mark.parametrize("command", ["train", "extract"])
def test_segments_shorter_than_a_codec_frame_are_refused_once_the_model_is_known(
    command, model_dir, stems, tmp_path, capsys
):
    """The tiny model has 50 frames per second: 0.01 s holds no frame; 0.1 s holds 5 positions."""
    base = ["probes", command, "--model", str(model_dir), "--data", str(stems), "--trait", "drums",
            "--cache", str(tmp_path / "cache"), "--quiet"]  # fmt: skip
    if command == "train":
        base += ["--out", str(tmp_path / "p.safetensors")]
    refused([*base, "--seconds", "0.01"], capsys, "--seconds 0.01", "one codec frame", "at least 0.02 s")
    refused([*base, "--seconds", "0.1", "--last", "6"], capsys, "--last 6", "5 codec frames")
    assert [p.name for p in tmp_path.iterdir()] == ["stems"]  # no cache, no probe file
