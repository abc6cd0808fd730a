"""The commands end to end on a tiny model: train, show, generate, continue, and their errors."""

import json

import pytest
import soundfile as sf

from smitin.cli import main
from smitin.probes import ProbeSet


def test_train_show_generate_continue(model_dir, stems, tmp_path, capsys):
    probes = tmp_path / "drums.safetensors"
    rc = main(["probes", "train", "--model", str(model_dir), "--data", str(stems), "--trait", "drums",
               "--seconds", "1", "--out", str(probes), "--quiet"])  # fmt: skip
    assert rc == 0 and probes.exists()
    out = capsys.readouterr().out
    assert "split by track" in out and "best heads" in out and "segments:" in out
    p = ProbeSet.load(probes)
    assert p.meta["model"] == str(model_dir) and p.meta["data"]["segments"]["positive"] > 0
    assert main(["probes", "show", str(probes), "--plot", str(tmp_path / "heat.png")]) == 0
    assert (tmp_path / "heat.png").stat().st_size > 1000

    wav, trace = tmp_path / "gen.wav", tmp_path / "gen.json"
    rc = main(["generate", "", "--model", str(model_dir), "--steer", f"{probes}:3", "--duration", "0.3",
               "--out", str(wav), "--trace", str(trace), "--plot", str(tmp_path / "gen.png")])  # fmt: skip
    assert rc == 0
    audio, sr = sf.read(wav)
    assert sr == 8000 and len(audio) == int(0.3 * 8000)
    t = json.loads(trace.read_text())
    assert t["settings"]["traits"][0]["alpha"] == 3.0 and t["steps"][0]["traits"]["drums"]["applied"] == [
        True
    ]

    s = t["settings"]
    assert (
        s["every"] == 1
        and s["traits"][0]["heads"] == 16
        and s["traits"][0]["direction"] in ("probe", "mass_mean")
    )  # auto, resolved
    rc = main(["generate", "", "--model", str(model_dir), "--steer", str(probes), "--recipe", "paper",
               "--duration", "0.3", "--out", str(wav), "--trace", str(trace)])  # fmt: skip
    s = json.loads(trace.read_text())["settings"]
    assert rc == 0 and s["every"] == 5 and s["traits"][0]["heads"] == "soft"
    assert s["traits"][0]["direction"] in (
        "probe",
        "mass_mean",
    )  # auto, resolved and s["traits"][0]["monitor"]
    rc = main(["generate", "", "--model", str(model_dir), "--steer", str(probes), "--recipe", "paper",
               "--every", "2", "--heads", "3", "--duration", "0.3", "--out", str(wav), "--trace", str(trace)])  # fmt: skip
    s = json.loads(trace.read_text())["settings"]
    assert s["every"] == 2 and s["traits"][0]["heads"] == 3  # flags override the recipe
    assert s["engine"] == "eager"  # auto on CPU
    rc = main(["generate", "", "--model", str(model_dir), "--steer", str(probes), "--engine", "captured",
               "--duration", "0.3", "--out", str(wav), "--trace", str(trace)])  # fmt: skip
    assert rc == 0 and json.loads(trace.read_text())["settings"]["engine"] == "captured"

    rc = main(["continue", str(wav), "--model", str(model_dir), "--steer", f"{probes}:-3", "--no-monitor",
               "--duration", "0.2", "--out", str(tmp_path / "cont.wav")])  # fmt: skip
    assert rc == 0 and len(sf.read(tmp_path / "cont.wav")[0]) == int(0.2 * 8000)  # the new audio only


def test_errors_name_the_file_and_the_fix(model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 10)
    assert main(["generate", "", "--model", str(model_dir), "--steer", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.safetensors" in err and "smitin probes train" in err and "Traceback" not in err
    assert main(["probes", "train", "--model", str(model_dir), "--data", str(tmp_path / "nope"),
                 "--trait", "drums", "--out", str(tmp_path / "x.safetensors")]) == 2  # fmt: skip
    assert "nope" in capsys.readouterr().err
    assert main(["continue", str(tmp_path / "missing.wav"), "--model", str(model_dir)]) == 2
    assert "missing.wav: no such audio file" in capsys.readouterr().err
    assert main(["generate", "", "--model", str(tmp_path / "no-model")]) == 2
    assert "cannot load a model config" in capsys.readouterr().err


def test_generation_options_are_checked_before_the_model_loads(tmp_path, capsys):
    """A bad option fails at once, naming it: the (missing) model is never loaded."""
    missing = str(tmp_path / "no-model")
    for argv, word in (
        (["generate", "", "--duration", "-1"], "duration"),
        (["generate", "", "--every", "0"], "every"),
        (["generate", "", "--batch", "0"], "batch"),
        (["continue", str(tmp_path / "a.wav"), "--duration", "0"], "duration"),
        (["generate", "", "--heads", "many"], "--heads"),
        (["demo", "--duration", "-2"], "duration"),
    ):
        assert main([*argv, "--model", missing] if argv[0] != "demo" else argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("smitin: error: ") and word in err, err
        assert "cannot load" not in err and "Traceback" not in err


def test_bad_choice_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "", "--rows", "uncond"])
    assert exc.value.code == 2 and "invalid choice: 'uncond'" in capsys.readouterr().err
