"""`smitin generate --prompts FILE`: parsing, one process, two gloo processes, a killed rank."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import make_probes
from smitin.cli import UsageError, main
from smitin.cli.batch import read_prompts
from smitin.probes import ProbeSet


@pytest.fixture
def probe_file(tmp_path):
    """Probes for the bundled model's head layout (what `smitin generate` loads by default)."""
    from smitin.backbone import HeadLayout
    from smitin.tiny import BUNDLED_DIR

    dec = json.loads((BUNDLED_DIR / "config.json").read_text())["decoder"]
    layout = HeadLayout(
        dec["num_hidden_layers"], dec["num_attention_heads"], dec["hidden_size"] // dec["num_attention_heads"]
    )
    return make_probes(layout).save(tmp_path / "drums.safetensors")


PROMPTS = 'a calm piano piece\n# a comment\n{"prompt": "rock with drums", "seed": 7, "duration": 0.3}\n\nlofi beat\n'


def test_prompt_lines_plain_and_json(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text(PROMPTS)
    lines = read_prompts(f)
    assert [(line.index, line.number, line.prompt) for line in lines] == [
        (0, 1, "a calm piano piece"),
        (1, 3, "rock with drums"),
        (2, 5, "lofi beat"),
    ]
    assert lines[1].seed == 7 and lines[1].duration == 0.3 and lines[0].seed is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"prompt": "x", "sed": 1}', "line 1: unknown keys ['sed']"),
        ('{"prompt": "x"', "line 1: not valid JSON"),
        ('{"prompt": "x", "seed": -1}', '"seed" must be a whole number >= 0'),
        ('{"prompt": "x", "steer": "d.safetensors"}', '"steer" must be a list'),
        ('{"prompt": "x", "steer": ["d.safetensors:nan"]}', "line 1: --steer d.safetensors:nan: strength"),
        ("# only a comment\n", "no prompts in the file"),
    ],
)
def test_bad_prompt_files_name_the_line(tmp_path, text, message):
    f = tmp_path / "p.txt"
    f.write_text(text)
    with pytest.raises(UsageError) as err:
        read_prompts(f)
    assert message in str(err.value)


def test_a_bad_line_is_refused_before_any_work(tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text('ok\n{"prompt": "x", "duration": 0}\n')
    assert main(["generate", "--prompts", str(f), "--out", str(tmp_path / "o")]) == 2
    assert "p.txt, line 2: duration must be a positive number" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["generate", "x", "--prompts", str(f)]) == 2  # both a prompt and a file


def test_one_process_writes_every_line_once_and_a_rerun_skips_them(tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text(PROMPTS)
    out = tmp_path / "o"
    argv = ["generate", "--prompts", str(f), "--out", str(out), "--duration", "0.2", "--quiet"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"000{i}.{x}" for i in range(3) for x in ("json", "wav")]
    first = (out / "0002.wav").read_bytes()
    (out / "0001.wav").unlink()
    assert main(argv) == 0
    assert "3 prompts, 3 for this process, 2 already written" in capsys.readouterr().out
    assert (out / "0002.wav").read_bytes() == first and (out / "0001.wav").exists()


def torchrun(*args: str, env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SMITIN_DIST_TIMEOUT": "120", **(env_extra or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "smitin", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_gloo_processes_write_what_one_process_writes(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text(PROMPTS)
    common = ["--prompts", str(f), "--duration", "0.2", "--quiet"]
    assert main(["generate", *common, "--out", str(tmp_path / "one")]) == 0
    proc = torchrun("generate", *common, "--out", str(tmp_path / "two"))
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    assert "[rank 0/2] 3 prompts, 2 for this process" in log and "[rank 1/2] 3 prompts, 1 for this" in log
    for i in range(3):
        assert (tmp_path / "one" / f"000{i}.wav").read_bytes() == (
            tmp_path / "two" / f"000{i}.wav"
        ).read_bytes()


def test_a_killed_rank_fails_the_run_and_a_rerun_finishes_it(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("\n".join(f"prompt {i}" for i in range(8)) + "\n")
    out = tmp_path / "killme"
    args = ["generate", "--prompts", str(f), "--out", str(out), "--duration", "1.0", "--quiet"]
    proc = torchrun(*args)
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob("*.wav")):
        time.sleep(0.2)
    victims = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    workers = [int(p) for p in victims if int(p) != proc.pid]
    assert workers, "no worker processes found"
    os.kill(max(workers), signal.SIGKILL)  # the younger worker: a rank, not the launcher
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, log
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert all((out / n).stat().st_size > 0 for n in written)  # nothing half-written under a real name
    rerun = torchrun(*args)
    log, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, log
    assert sorted(p.name for p in out.iterdir()) == [
        f"{i:04d}.{x}" for i in range(8) for x in ("json", "wav")
    ]


def test_an_edited_line_is_regenerated_and_the_rerun_says_why(tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text("a calm piano piece\nlofi beat\n")
    out = tmp_path / "o"
    argv = ["generate", "--prompts", str(f), "--out", str(out), "--duration", "0.2", "--quiet"]
    assert main(argv) == 0
    trace = json.loads((out / "0000.json").read_text())["settings"]["request"]
    assert trace["prompt"] == "a calm piano piece" and trace["seed"] == 0 and trace["duration"] == 0.2
    assert trace["options"]["guidance_scale"] == 3.0 and trace["model"] == "bundled"
    kept = (out / "0001.wav").read_bytes()
    capsys.readouterr()
    f.write_text("rock with drums\nlofi beat\n")  # line 1 edited
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "1 already written, 1 to regenerate (line 1: prompt changed)" in text, text
    assert json.loads((out / "0000.json").read_text())["settings"]["request"]["prompt"] == "rock with drums"
    assert (out / "0001.wav").read_bytes() == kept
    assert main([*argv, "--seed", "5"]) == 0  # a changed option regenerates every line
    assert "0 already written, 2 to regenerate (line 1: seed, options changed" in capsys.readouterr().out


def test_a_retrained_probe_file_regenerates_the_lines_that_steer_with_it(tmp_path, capsys, probe_file):
    f = tmp_path / "p.txt"
    f.write_text(f'{{"prompt": "x", "steer": ["{probe_file}:5"]}}\nplain\n')
    out = tmp_path / "o"
    argv = ["generate", "--prompts", str(f), "--out", str(out), "--duration", "0.2", "--quiet"]
    assert main(argv) == 0
    steer = json.loads((out / "0000.json").read_text())["settings"]["request"]["steer"]
    assert steer[0]["alpha"] == 5 and len(steer[0]["sha256"]) == 64
    probes = ProbeSet.load(probe_file)
    probes.bias = probes.bias + 1.0
    probes.save(probe_file)  # retrained under the same name
    capsys.readouterr()
    assert main(argv) == 0
    assert "1 already written, 1 to regenerate (line 1: steer changed)" in capsys.readouterr().out


def test_batch_works_with_prompts_and_trace_or_plot_are_refused_first(tmp_path, capsys):
    f = tmp_path / "p.txt"
    f.write_text("a\nb\n")
    out = tmp_path / "o"
    argv = [
        "generate",
        "--prompts",
        str(f),
        "--out",
        str(out),
        "--duration",
        "0.2",
        "--quiet",
        "--batch",
        "3",
    ]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "0000-0.wav", "0000-1.wav", "0000-2.wav", "0000.json",
        "0001-0.wav", "0001-1.wav", "0001-2.wav", "0001.json",
    ]  # fmt: skip
    text = capsys.readouterr().out
    assert "wrote" in text and "0000-0.wav, 0000-1.wav, 0000-2.wav" in text
    assert main(argv) == 0
    assert "2 already written" in capsys.readouterr().out
    for flag, value in (("--trace", "t.json"), ("--plot", "p.png")):
        assert main([*argv, "--out", str(tmp_path / "n"), flag, str(tmp_path / value)]) == 2
        assert (
            f"{flag} names one file; with --prompts each line writes its own trace" in capsys.readouterr().err
        )
        assert not (tmp_path / "n").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"caf\xe9 au lait\n", "not UTF-8 text"),
        (b'{"prompt": "x", "seed": ' + b"9" * 5000 + b"}\n", "numbers must stay below"),
        (b'{"prompt": "x", "seed": 99999999999999999999}\n', "out of range"),
        (b'{"prompt": "x", "duration": 1e308}\n', "out of range"),
        (b'{"prompt": "x", "duration": 10000}\n', "line 1: duration must be a positive number of seconds"),
        (b'{"prompt": "x", "seed": 9223372036854775807}\n{"prompt": "y", "seed": -0}\n', None),
        (b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}\n", "nested too deeply"),
        (b"x" * 3000 + b"\n", "a prompt of 3,000 characters; at most 2000"),
    ],
    ids=["latin1", "huge-int", "seed-range", "1e308", "duration", "max-seed", "deep", "long"],
)
def test_hostile_prompt_files_are_refused_before_any_work(tmp_path, capsys, content, message):
    f = tmp_path / "p.txt"
    f.write_bytes(content)
    if message is None:
        assert [line.seed for line in read_prompts(f)] == [2**63 - 1, 0]
        return
    code = main(["generate", "--prompts", str(f), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


def test_special_files_are_not_read_as_prompts(tmp_path, capsys):
    for special, message in (("/dev/zero", "is not a regular file"), (str(tmp_path), "is a folder")):
        assert main(["generate", "--prompts", special, "--out", str(tmp_path / "o")]) == 2
        assert f"--prompts {special} {message}" in capsys.readouterr().err
