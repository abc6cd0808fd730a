"""Fixtures of the tiny-model tests: the bundled model, loaded once, and a one-clip factory."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from transformers import AutoProcessor, MusicgenForConditionalGeneration, MusicgenProcessor

import smitin  # noqa: F401  (registers the codec, as users will do)
from smitin.tiny import BUNDLED_DIR, Example


@pytest.fixture(scope="session")
def bundle() -> tuple[MusicgenForConditionalGeneration, MusicgenProcessor]:
    """The bundled model and processor, loaded as users do (tests that change it deep-copy it first)."""
    model = MusicgenForConditionalGeneration.from_pretrained(BUNDLED_DIR).eval()
    return model, AutoProcessor.from_pretrained(BUNDLED_DIR)


@pytest.fixture
def clip() -> Callable[..., Example]:
    """clip(codes, caption="", activity=None): a pop clip with drums and without bass."""

    def make(codes: torch.Tensor, caption: str = "", activity: torch.Tensor | None = None) -> Example:
        return Example(
            "s", ["drums"], ["bass"], {"drums": "drums"}, "pop", 100, "C major", caption, codes, activity
        )

    return make
