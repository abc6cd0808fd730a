"""`smitin generate --stream`: a WAV that grows as the audio is made, or PCM on stdout; same codes."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from helpers import make_probes
from smitin.cli import main


def test_stream_writes_what_generate_writes(model_dir, tiny, tmp_path, capsys):
    probes = make_probes(tiny.layout).save(tmp_path / "drums.safetensors")
    common = [
        "generate",
        "",
        "--model",
        str(model_dir),
        "--steer",
        f"{probes}:3",
        "--duration",
        "1",
        "--seed",
        "2",
    ]
    assert main([*common, "--out", str(tmp_path / "whole.wav"), "--trace", str(tmp_path / "whole.json")]) == 0
    assert (
        main([*common, "--stream", "--out", str(tmp_path / "s.wav"), "--trace", str(tmp_path / "s.json")])
        == 0
    )
    assert "streamed 1.00 s at 8000 Hz" in capsys.readouterr().out
    whole, sr = sf.read(tmp_path / "whole.wav")
    streamed, sr2 = sf.read(tmp_path / "s.wav")
    assert sr == sr2 == 8000 and len(streamed) == len(whole) == 8000
    assert np.abs(streamed - whole).max() < 2e-3  # 16-bit PCM of the same decode (EnCodec: exact joins)
    steps = [json.loads((tmp_path / f"{n}.json").read_text())["steps"] for n in ("whole", "s")]
    assert [s["traits"]["drums"]["C"] for s in steps[1]] == [s["traits"]["drums"]["C"] for s in steps[0][:50]]


def test_stream_to_stdout_is_raw_pcm(model_dir, capfdbinary):
    assert (
        main(["generate", "", "--model", str(model_dir), "--duration", "0.5", "--stream", "--out", "-"]) == 0
    )
    out, err = capfdbinary.readouterr()
    assert len(out) == 2 * 4000 and b"streamed 0.50 s" in err  # 0.5 s of 16-bit samples at 8 kHz


def test_stream_flags_are_checked_before_loading(model_dir, capsys):
    for args, message in (
        (["--endless"], "--endless needs --stream"),
        (["--stream", "--batch", "2"], "--stream plays one sample"),
        (["--stream", "--endless", "--context", "0"], "--context must be"),
    ):
        assert main(["generate", "", "--model", "no-such-model-folder", *args]) == 2
        assert message in capsys.readouterr().err
