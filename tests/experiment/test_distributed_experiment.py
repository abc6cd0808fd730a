"""`torchrun -m smitin experiment`: two gloo processes give the table one process gives."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from smitin.cli import main

ARGS = ["--traits", "drums", "--prompts", "2", "--seeds", "1", "--duration", "0.5", "--alphas", "5",
        "--tasks", "continuation", "--methods", "none,iti,smitin", "--batch", "2", "--quiet"]  # fmt: skip


def table(folder) -> list[dict]:
    with open(folder / "results.csv") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r.pop("gen_seconds", None)  # wall time, the one column that may differ
    return rows


@pytest.mark.slow
def test_two_processes_give_the_table_one_process_gives(tiny, stems, tmp_path):
    model = tmp_path / "model"
    tiny.model.save_pretrained(model)
    common = ["experiment", "--model", str(model), "--data", str(stems), *ARGS]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SMITIN_DIST_TIMEOUT": "300"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "smitin", *common]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    one, two = table(tmp_path / "one"), table(tmp_path / "two")
    assert len(one) == 3 and one == two
