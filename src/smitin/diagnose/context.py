"""What every analysis of `smitin diagnose` shares: the model, the data split, probes and judge.

Built on the experiment's own machinery (`smitin.experiment.runner.Experiment`): the same split
by track, the same probes (fitted and cached, or the user's probe file) and the same independent
judge (the CNN on log-mel frames, trained on other songs and calibrated through the codec), so a
diagnosis and an experiment on one model and data speak about the same things.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbone import Backbone
from ..experiment.config import Config
from ..experiment.split import pick_prompts
from ..probes import ProbeSet
from ..steering import Steer
from .settings import Settings


class Context:
    """The model, data, probes and judge of one trait, ready for the analyses."""

    def __init__(self, s: Settings, backbone: Backbone | None = None) -> None:
        from ..experiment.runner import Experiment

        self.settings = s
        cfg = Config(
            out=s.out / "experiment",
            model=s.model,
            device=s.device,
            data=s.data,
            songs=s.songs,
            traits=[s.trait, *(t for t in self.kept_files(s) if t != s.trait)],
            tasks=["continuation"],
            prompts=s.prompts,
            seeds=s.seeds,
            seed=s.seed,
            duration=s.duration,
            prompt_seconds=s.prompt_seconds,
            per_track=s.per_track,
            progress=s.progress,
        )
        self.exp = Experiment(cfg, backbone)
        self.backbone, self.sr = self.exp.backbone, self.exp.sr
        given = ProbeSet.load(s.probes, self.backbone) if s.probes is not None else None
        self.exp.prepare_trait(s.trait, given)
        self.probes = self.exp.probes[s.trait]
        self.cnn = self.exp.cnns[s.trait]
        self.data = self.exp.data[s.trait]
        self.derived: dict[str, ProbeSet] = {}  # probes an analysis made from these (made once)
        self.derived_tensors: dict[str, torch.Tensor] = {}  # and what they were made from
        self.kept: dict[str, ProbeSet] = {}  # the other traits watched (and held where a variant says)
        for trait, path in self.kept_files(s).items():
            self.exp.prepare_trait(trait, ProbeSet.load(path, self.backbone) if path else None)
            self.kept[trait] = self.exp.probes[trait]

    @staticmethod
    def kept_files(s: Settings) -> dict[str, Path | None]:
        """--keep values as {trait: probe file or None (fitted)}."""
        out: dict[str, Path | None] = {}
        for item in s.keep:
            trait, eq, path = item.partition("=")
            out[trait.strip()] = Path(path.strip()) if eq else None
        return out

    @property
    def trait(self) -> str:
        return self.settings.trait

    def judge(self, audio: np.ndarray, trait: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The independent judge of `trait` (default: the diagnosed one) on clips [N, S]: (present, p)."""
        cnn = self.exp.cnns[trait or self.trait]
        p = cnn.proba(audio, self.sr)
        return p >= cnn.threshold, p

    def prompts(self) -> tuple[np.ndarray, list[int]]:
        """Trait-free prompts [P, S] from the evaluation tracks, and each one's index (its group)."""
        segs = self.data.prompts
        idx = pick_prompts(segs, 0, self.settings.prompts)
        if not idx:
            raise ValueError(f"no prompt segments without {self.trait} on the evaluation tracks; add songs")
        return segs.load(idx), idx

    def prompt_traits(self, idx: list[int]) -> list[set[str]]:
        """Per prompt, the watched other traits (`--keep`) among the stems mixed into it."""
        from ..data.traits import playing

        segments = self.data.prompts.segments
        return [set(playing((Path(src).stem for src in segments[i].sources), self.kept)) for i in idx]

    def pairs(self, source: str = "probe") -> tuple[np.ndarray, np.ndarray]:
        """Up to `pairs` excerpts with and without the trait, the same window of the same song:
        (with [N, S], without [N, S]); "probe" from the probe tracks (3 s, what the directions were
        fitted on), "eval" from the evaluation tracks (the judged clip length)."""
        segs = self.data.probe if source == "probe" else self.data.judge_eval
        by_window: dict[tuple[str, float], dict[int, int]] = {}
        for i, seg in enumerate(segs.segments):
            by_window.setdefault((seg.track, seg.start), {})[seg.label] = i
        both = [(w[1], w[0]) for w in by_window.values() if 0 in w and 1 in w]
        rng = np.random.default_rng(self.settings.seed)
        pick = sorted(rng.permutation(len(both))[: self.settings.pairs].tolist())
        if not pick:
            raise ValueError(f"no with/without {self.trait} pairs in the {source} tracks; add songs")
        pos = segs.load([both[i][0] for i in pick])
        neg = segs.load([both[i][1] for i in pick])
        return pos, neg

    def steer(self, **kwargs: Any) -> Steer:
        """A Steer of this trait: smitin's recipe at --alpha unless `kwargs` say otherwise."""
        return Steer(self.probes, **{"alpha": self.settings.alpha, **kwargs})
