"""`smitin probes train | extract | show` with hostile input: exit 2, one message, no traceback, nothing written."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from helpers import make_probes
from smitin.backbone import HeadLayout
from smitin.cli import main
from smitin.probes import ProbeFileError, ProbeSet


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


def _hostile(path, change):
    """A probe file written the ordinary way, then one thing changed by `change(tensors, meta)`."""
    good = make_probes(HeadLayout(2, 4, 8)).save(path.with_name("good.safetensors"))
    from safetensors import safe_open

    with safe_open(good, framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["smitin"])
    meta = change(tensors, meta) or meta
    save_file(tensors, path, metadata={"smitin": json.dumps(meta)})
    return path


def _set(name, value):
    return lambda t, m: t.__setitem__(name, value)


NAN_WEIGHT = torch.full((2, 4, 8), float("nan"))
HOSTILE = {
    "nan-weight": (_set("weight", NAN_WEIGHT), "'weight' holds NaN or infinite"),
    "inf-sigma": (_set("sigma_mass_mean", torch.full((2, 4), float("inf"))), "'sigma_mass_mean' holds NaN"),
    "list-meta": (lambda t, m: ["drums", m], "metadata is a JSON list, not an object"),
    "list-training": (lambda t, m: {**m, "training": ["probe"]}, "'training' is ['probe']"),
    "number-trait": (lambda t, m: {**m, "trait": 3}, "'trait' is 3"),
    "int-accuracy": (_set("accuracy", torch.ones(2, 4, dtype=torch.int64)), "'accuracy' is torch.int64"),
    "short-direction": (_set("direction", torch.ones(2, 4, 7)), "'direction' has shape (2, 4, 7)"),
    "bias-per-dim": (_set("bias", torch.ones(2, 4, 8)), "'bias' has shape (2, 4, 8), not (2, 4)"),
    "flat-weight": (_set("weight", torch.ones(64)), "'weight' has shape (64,)"),
    "foreign-layout": (lambda t, m: {**m, "layout": "L9xH9xD9"}, "layout 'L9xH9xD9' does not match"),
    "accuracy-5": (_set("accuracy", torch.full((2, 4), 5.0)), "accuracies must lie in [0, 1]"),
    "negative-sigma": (_set("sigma", -torch.ones(2, 4)), "'sigma' (a spread) holds negative"),
    "huge-push": (
        lambda t, m: (
            (
                t.__setitem__("direction_mass_mean", t["direction_mass_mean"] * 1e38),
                t.__setitem__("sigma_mass_mean", t["sigma_mass_mean"] * 1e37),
            )
            and None
        ),
        "'direction_mass_mean' holds values up to",
    ),
    "push-overflow": (
        lambda t, m: t.__setitem__("sigma_probe", t["sigma_probe"] * 1e5),
        "steering along 'direction_probe' could overflow a step: |direction| x sigma x the largest strength",
    ),
    "huge-weight": (_set("weight", torch.full((2, 4, 8), 1e30)), "'weight' holds values up to 1e+30"),
    "unknown-direction": (
        lambda t, m: {**m, "training": {"direction": "pca"}},
        "training direction is 'pca'",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_probes_show_refuses_a_hostile_probe_file(case, tmp_path, capsys):
    change, problem = HOSTILE[case]
    path = _hostile(tmp_path / f"{case}.safetensors", change)
    with pytest.raises(ProbeFileError, match="smitin probes train"):
        ProbeSet.load(path)
    refused(
        ["probes", "show", str(path), "--plot", str(tmp_path / "heat.png")],
        capsys,
        f"{case}.safetensors",
        problem,
        "retrain it with `smitin probes train`",
    )
    assert not (tmp_path / "heat.png").exists()


def test_generate_refuses_a_nan_probe_file(model_dir, tmp_path, capsys):
    path = _hostile(tmp_path / "nan.safetensors", _set("weight", NAN_WEIGHT))
    argv = ["generate", "", "--model", str(model_dir), "--steer", str(path), "--duration", "0.1",
            "--out", str(tmp_path / "out.wav")]  # fmt: skip
    refused(argv, capsys, "nan.safetensors", "'weight' holds NaN")
    assert not (tmp_path / "out.wav").exists()


def test_too_few_tracks_with_the_trait_fail_before_extraction(model_dir, tmp_path, capsys):
    """One track has drums: its pairs cannot be split by track. Said before extracting anything."""
    from helpers import plain_song

    stems = tmp_path / "stems"
    for name in ("a", "b", "c"):
        plain_song(stems, name)
    for name in ("b", "c"):
        (stems / name / "drums.wav").unlink()
    cache, out = tmp_path / "cache", tmp_path / "p.safetensors"
    argv = ["probes", "train", "--model", str(model_dir), "--data", str(stems), "--trait", "drums",
            "--seconds", "1", "--cache", str(cache), "--out", str(out), "--quiet"]  # fmt: skip
    refused(
        argv,
        capsys,
        str(stems.resolve()),
        "segments from 1 track;",
        "at least 2 tracks",
        "add tracks where the trait plays",
    )
    assert not cache.exists() and not out.exists()  # refused before extraction


def test_two_folders_with_2_and_1_clips_fail_before_extraction(model_dir, tmp_path, capsys):
    from helpers import noise, tone, write

    pos, neg = tmp_path / "with", tmp_path / "without"
    for i in range(2):
        write(pos / f"{i}.wav", noise(2.0, seed=i))
    write(neg / "0.wav", tone(2.0, 220.0))
    cache, out = tmp_path / "cache", tmp_path / "p.safetensors"
    argv = ["probes", "train", "--model", str(model_dir), "--positive", str(pos), "--negative", str(neg),
            "--seconds", "1", "--cache", str(cache), "--out", str(out), "--quiet"]  # fmt: skip
    refused(argv, capsys, str(pos), str(neg), "2 clips with the trait (positive folder) and 1 without it",
            "add clips without it (negative folder)")  # fmt: skip
    assert not cache.exists() and not out.exists()
    write(pos / "2.wav", noise(2.0, seed=2))  # 3 + 3 clips: enough of each, but the default split
    for i in (1, 2):  # (a fifth of 6 clips) holds out one clip, so validation has one class only
        write(neg / f"{i}.wav", tone(2.0, 220.0 + 40 * i))
    refused(
        argv, capsys, "3 clips with the trait", "on the validation side", "--val-fraction", "--split-seed"
    )
    assert not cache.exists() and not out.exists()
