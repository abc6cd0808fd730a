"""`torchrun -m smitin probes train`: two gloo processes write the same probe tensors as one."""

from __future__ import annotations

import os
import subprocess
import sys

from safetensors.torch import load_file

from helpers import write_stems
from smitin.cli import main


def test_two_processes_train_the_same_probes_as_one(tmp_path):
    stems = write_stems(tmp_path / "stems", tracks=4, seconds=4.0, sr=16000)
    common = [
        "probes",
        "train",
        "--data",
        str(stems),
        "--trait",
        "drums",
        "--seconds",
        "1",
        "--batch-size",
        "2",
    ]
    assert main([*common, "--out", str(tmp_path / "one.safetensors"), "--quiet"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SMITIN_DIST_TIMEOUT": "120"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "smitin", *common]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path / "two.safetensors"), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("wrote ") == 1  # rank 0 trains and writes; rank 1 only extracts
    one, two = load_file(tmp_path / "one.safetensors"), load_file(tmp_path / "two.safetensors")
    assert sorted(one) == sorted(two)
    for name in one:
        assert one[name].equal(two[name]), name
    shards = sorted(p.name for p in (tmp_path / "two.cache").rglob("shard-*.safetensors"))
    assert len(shards) == len(sorted((tmp_path / "one.cache").rglob("shard-*.safetensors"))) > 1
