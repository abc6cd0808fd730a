"""Fixtures shared by the command-line tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny):
    """The tiny test model saved as a model folder, as `--model` takes it."""
    path = tmp_path_factory.mktemp("model") / "tiny"
    tiny.model.save_pretrained(path)
    return path
