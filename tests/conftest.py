"""Shared fixtures: tiny MusicGens built in code (seconds), fake probe sets, tiny stem folders."""

from __future__ import annotations

import logging

import pytest
import torch

from helpers import make_probes, write_stems
from smitin import architectures

logging.getLogger("transformers").setLevel(logging.ERROR)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Test models are tiny: one thread avoids oversubscription (14x faster on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny():
    """A random MusicGen with the real classes: 2 layers x 4 heads x 8 dims, 8 kHz, 50 Hz frames."""
    return architectures.build("tiny", seed=0)


@pytest.fixture
def probes_for():
    return make_probes


@pytest.fixture
def stems(tmp_path):
    return write_stems(tmp_path / "stems")
