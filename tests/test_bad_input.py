"""Bad values on the generation commands: exit 2 with one message, before any work, nothing written.

The cache, probe-file, data and model-folder cases live next to their modules
(tests/test_activations.py, tests/test_probes.py, tests/data/, tests/test_model_folders.py).
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from helpers import run_cli
from smitin import backbone as backbone_module
from smitin.generate import Result, continue_audio
from smitin.monitor import Trace


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model is loaded: these values must be refused before that."""

    def load(*_a, **_k):
        raise AssertionError("a model was loaded before the bad value was refused")

    monkeypatch.setattr(backbone_module, "load", load)


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def nothing_written(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steer", "d.safetensors:nan"], "strength must be a finite number between -100 and 100"),
        (["--steer", "d.safetensors:inf"], "strength must be a finite number"),
        (["--steer", "d.safetensors:-inf"], "strength must be a finite number"),
        (["--steer", "d.safetensors:1e9"], "not '1e9'"),
        (["--steer", "d.safetensors:abc"], "strength must be a number"),
        (["--duration", "0"], "--duration must be a positive number of seconds"),
        (["--duration", "-1"], "--duration must be a positive number"),
        (["--duration", "nan"], "--duration must be a positive number"),
        (["--duration", "inf"], "--duration must be a positive number"),
        (["--every", "0"], "--every (the schedule interval) must be a whole number from 1"),
        (["--batch", "0"], "--batch must be >= 1"),
        (["--guidance", "nan"], "--guidance must be a finite number"),
        (["--threshold", "5"], "--threshold must be a probability strictly between 0 and 1"),
        (["--threshold", "0"], "strictly between 0 and 1"),
        (["--threshold", "nan"], "strictly between 0 and 1"),
        (["--heads", "0"], "--heads must be 'soft' or a positive number"),
        (["--heads", "abc"], "--heads must be 'soft' or a number of heads"),
        (["--out", "song.wav/x.wav"], "is a file, not a folder"),
        (["--trace", "."], "is a folder; give a file name"),
        (["--plot", "song.wav/p.png"], "is a file, not a folder"),
        (["--plot", "p.xyz"], "--plot p.xyz: unknown file type '.xyz'; use one of"),
        (["--out", "a.mp4"], "--out a.mp4: unknown file type '.mp4'; use one of"),
        (["--out", "/proc/a.wav"], "--out /proc/a.wav: cannot write in /proc"),
        (["--trace", "/proc/t.json"], "cannot write in /proc"),
        (["--seed", "-1"], "seed must be a whole number from 0 to 2**63-1"),
        (["--seed", str(2**63)], "seed must be a whole number from 0 to 2**63-1"),
        (["--guidance", "-1"], "--guidance must be between 0 and 30"),
        (["--guidance", "1e30"], "--guidance must be between 0 and 30"),
    ],
)
def test_bad_generation_values_are_refused_before_the_model_loads(args, message, cwd, no_model, capsys):
    (cwd / "song.wav").write_bytes(b"not a folder")
    code, text = run_cli(["generate", "a song", *args], capsys)
    assert code == 2, text
    assert message in text and "Traceback" not in text
    assert sorted(p.name for p in cwd.iterdir()) == ["song.wav"]  # nothing written


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_an_unwritable_output_folder_is_refused_first(cwd, no_model, capsys):
    locked = cwd / "locked"
    locked.mkdir(mode=0o500)
    code, text = run_cli(["generate", "x", "--out", str(locked / "a.wav")], capsys)
    assert code == 2 and "permission denied" in text


def test_limits_known_only_from_the_model_are_checked_before_generating(cwd, capsys):
    code, text = run_cli(["generate", "x", "--duration", "100"], capsys)
    assert code == 2 and "at most 40.9 s (2048 positions" in text, text
    code, text = run_cli(["generate", "x", "--heads", "100"], capsys)
    assert code == 2 and "--heads must be 'soft' or 1..64 (8 layers x 8 heads" in text, text
    assert not list(cwd.glob("*.wav"))


def write_prompt(path: Path, x: np.ndarray, sr: int = 16000) -> Path:
    sf.write(str(path), x.astype(np.float32), sr, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda x: np.where(np.arange(len(x)) % 100 == 0, np.nan, x), "samples are NaN or infinite"),
        (lambda x: np.where(np.arange(len(x)) == 7, np.inf, x), "1 of 16000 samples are NaN or infinite"),
        (lambda x: np.full_like(x, np.nan), "16000 of 16000 samples are NaN"),
        (lambda x: np.zeros_like(x), "the audio prompt is silent"),
    ],
)
def test_unusable_prompt_audio_is_refused_naming_the_file(make, message, cwd, no_model, capsys):
    x = 0.3 * np.sin(np.linspace(0, 2000, 16000))
    prompt = write_prompt(cwd / "prompt.wav", make(x))
    code, text = run_cli(["continue", str(prompt)], capsys)
    assert code == 2 and message in text and "prompt.wav" in text, text
    assert "Traceback" not in text and not (cwd / "out.wav").exists()


def test_prompts_too_short_or_too_long_for_the_model_are_refused(cwd, capsys):
    short = write_prompt(cwd / "short.wav", 0.3 * np.ones(80))  # 5 ms < one 20 ms frame
    code, text = run_cli(["continue", str(short)], capsys)
    assert code == 2 and "shorter than one codec frame (20 ms)" in text and "short.wav" in text, text
    long = write_prompt(cwd / "long.wav", 0.3 * np.sin(np.arange(60 * 16000) / 10))
    code, text = run_cli(["continue", str(long), "--duration", "5"], capsys)
    assert code == 2 and "the prompt may be at most 35.9 s" in text, text
    assert not (cwd / "out.wav").exists()


def test_a_prompt_beyond_full_scale_is_scaled_down_with_a_warning(tiny):
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(8000)).clip(-1, 1).astype(np.float32)
    quiet = continue_audio(tiny, x * 0.99 / np.abs(x).max(), 8000, duration=0.1, progress=False)
    with pytest.warns(UserWarning, match="beyond full scale .* scaled down to peak 0.99"):
        loud = continue_audio(tiny, x * 1e30, 8000, duration=0.1, progress=False)
    assert torch.equal(loud.codes, quiet.codes)


def test_continue_writes_the_new_audio_unless_asked_for_the_prompt(cwd, capsys):
    sr = 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr)).astype(np.float32)
    prompt = write_prompt(cwd / "p.wav", x)
    code, text = run_cli(
        ["continue", str(prompt), "--duration", "0.4", "--out", "new.wav", "--trace", "t.json"], capsys
    )
    assert code == 0, text
    assert sf.info(str(cwd / "new.wav")).frames == round(0.4 * sr)
    assert json.loads((cwd / "t.json").read_text())["settings"]["output"]["written"] == "new"
    code, text = run_cli(
        [
            "continue",
            str(prompt),
            "--duration",
            "0.4",
            "--with-prompt",
            "--out",
            "all.wav",
            "--trace",
            "u.json",
        ],
        capsys,
    )
    assert code == 0, text
    both, _ = sf.read(str(cwd / "all.wav"), dtype="float32")
    assert len(both) == round(1.4 * sr)
    assert np.abs(both[:sr] - x).max() < 1e-3  # the prompt as given, not the codec's re-synthesis
    out = json.loads((cwd / "u.json").read_text())["settings"]["output"]
    assert out["written"] == "prompt+new" and out["prompt_seconds"] == 1.0


def fake_result(audio: np.ndarray, sr: int = 8000) -> Result:
    trace = Trace([], 50.0, torch.zeros(0, 1, 0), torch.zeros(0, 1, 0), torch.zeros(0, dtype=torch.bool))
    return Result(audio.astype(np.float32), sr, torch.zeros(1, 4, 1, dtype=torch.long), trace)


def test_loud_output_is_scaled_down_not_clipped_and_the_gain_is_recorded(tmp_path):
    x = np.sin(np.linspace(0, 100, 8000))[None] * 3.0
    r = fake_result(x)
    (path,) = r.save(tmp_path / "o.wav", tmp_path / "o.json")
    y, _ = sf.read(str(path), dtype="float32")
    assert abs(np.abs(y).max() - 0.99) < 1e-3 and np.corrcoef(x[0], y)[0, 1] > 0.9999
    out = json.loads((tmp_path / "o.json").read_text())["settings"]["output"]
    assert out["peak_gain"] == [pytest.approx(0.33, abs=1e-3)]
    r = fake_result(0.5 * x / 3)
    r.save(tmp_path / "p.wav")
    assert r.trace.settings["output"]["peak_gain"] == [1.0]


def test_silent_output_is_reported(cwd, capsys, monkeypatch):
    gen = importlib.import_module("smitin.generate")  # the face's `generate` is the function
    monkeypatch.setattr(gen, "generate", lambda *a, **k: fake_result(np.full((1, 8000), 1e-6)))
    code, text = run_cli(["generate", "a quiet chamber piece"], capsys)
    assert code == 0 and "warning: out.wav is nearly silent (-120 dBFS)" in text, text


def test_a_failed_trace_leaves_no_wav_and_no_temporary_files(tmp_path, monkeypatch):
    r = fake_result(np.zeros((2, 800)))

    def broken(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(Trace, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        r.save(tmp_path / "o.wav", tmp_path / "o.json")
    assert nothing_written(tmp_path)


def test_outputs_honour_the_umask(tmp_path):
    before = os.umask(0o022)
    try:
        (path,) = fake_result(np.zeros((1, 800))).save(tmp_path / "o.wav")
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "argv",
    [
        ["probes", "train", "--data", "d", "--trait", "drums", "--out", "song.wav/p.safetensors"],
        [
            "probes",
            "train",
            "--data",
            "d",
            "--trait",
            "drums",
            "--out",
            "p.safetensors",
            "--cache",
            "song.wav",
        ],
        ["probes", "extract", "--data", "d", "--trait", "drums", "--cache", "song.wav/c"],
        ["probes", "show", "p.safetensors", "--plot", "song.wav/p.png"],
        ["demo", "--out", "song.wav/demo"],
        ["data", "synth", "--out", "song.wav"],
        ["experiment", "--out", "song.wav/exp"],
    ],
    ids=["train-out", "train-cache", "extract-cache", "show-plot", "demo", "synth", "experiment"],
)
def test_every_command_checks_its_outputs_before_working(argv, cwd, no_model, capsys):
    (cwd / "song.wav").write_bytes(b"not a folder")
    code, text = run_cli(argv, capsys)
    assert code == 2 and "song.wav" in text and "is a file, not a folder" in text, text
    assert "Traceback" not in text and sorted(p.name for p in cwd.iterdir()) == ["song.wav"]


def test_guidance_below_one_turns_cfg_off_as_the_help_says(cwd, capsys):
    code, text = run_cli(
        ["generate", "x", "--guidance", "0.5", "--duration", "0.2", "--trace", "t.json"], capsys
    )
    assert code == 0 and "Traceback" not in text, text
    assert json.loads((cwd / "t.json").read_text())["settings"]["guidance_scale"] == 0.5


def test_a_batch_beyond_the_free_memory_is_refused_with_the_estimate(cwd, capsys):
    code, text = run_cli(["generate", "x", "--batch", "100000", "--duration", "5"], capsys)
    assert code == 2, text
    assert "generating 100000 clips at once needs about" in text and "GiB of memory (estimated" in text, text
    assert "generate at most" in text and "(--batch)" in text
    assert not list(cwd.glob("*.wav"))


@pytest.mark.parametrize(("channels", "sr"), [(2, 16000), (1, 22050)], ids=["stereo", "22k"])
def test_prompt_audio_near_float32_max_is_scaled_down_not_refused(channels, sr, tiny, tmp_path):
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * 220 * t) * np.finfo(np.float32).max
    path = tmp_path / "loud.wav"
    sf.write(str(path), np.stack([x] * channels, axis=1).astype(np.float32), sr, subtype="FLOAT")
    from smitin.audio import inspect

    assert inspect(path) == pytest.approx(1.0)
    with pytest.warns(UserWarning, match="beyond full scale"):
        result = continue_audio(tiny, path, duration=0.1, progress=False)
    assert np.isfinite(result.audio).all() and np.abs(result.prompt_audio).max() <= 0.99 + 1e-6
