"""`smitin generate --prompts FILE`: parsing, one process, two gloo processes, a killed rank."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from smitin.cli import UsageError, main
from smitin.cli.batch import read_prompts

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
