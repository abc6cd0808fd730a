"""The experiment's judges: trained, calibrated and noise-checked once, then read from their cache."""

from __future__ import annotations

import pytest
import torch

from helpers import make_probes
from smitin.experiment import Config, judging
from smitin.experiment.judges import ClassifierJudge, ProbeDetector
from smitin.experiment.split import prepare_data


@pytest.fixture
def drums(tiny, stems, tmp_path):
    torch.set_num_threads(1)
    cfg = Config(out=tmp_path / "exp", data=stems, traits=["drums"], per_track=3, progress=False)
    return prepare_data(cfg, tiny.sample_rate).traits["drums"]


def _train(tiny, td, folder):
    return judging.trained_judges(
        "drums",
        td,
        folder,
        model_digest=tiny.weights_digest(),
        resynth=tiny.round_trip,
        sr=tiny.sample_rate,
        seed=0,
        detector=ProbeDetector(tiny, make_probes(tiny.layout)),
    )


def test_four_judges_calibrated_checked_on_noise_and_cached(tiny, drums, tmp_path, monkeypatch):
    folder = tmp_path / "judges"
    a, b, a0, b0 = _train(tiny, drums, folder)
    assert [j.info["noise"] for j in (a, b, a0, b0)] == ["augmented", "augmented", "none", "none"]
    for j in (a, b, a0, b0):
        assert 0 < j.threshold < 1 and 0 <= j.accuracy["auc_resynthesised"] <= 1
        assert 0 <= j.info["noise_check"]["white 0.3"] <= 1
    assert "probe_detector_auc" in a.accuracy and set(a.info["noise_flatness"]) == set(a.info["noise_check"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"drums{s}.safetensors" for s in ("", "-cnn", "-clean", "-cnn-clean")
    )

    def no_training(*_a, **_k):
        raise AssertionError("trained again")

    monkeypatch.setattr(ClassifierJudge, "train", no_training)
    again = _train(tiny, drums, folder)  # same key: read, not trained
    assert [j.threshold for j in again] == [j.threshold for j in (a, b, a0, b0)]
    monkeypatch.setattr(judging, "JUDGE_VERSION", judging.JUDGE_VERSION + 1)
    with pytest.raises(AssertionError, match="trained again"):  # another version: trained anew
        _train(tiny, drums, folder)
