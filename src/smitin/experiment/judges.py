"""The judges: two ways to decide "the trait is present", kept apart on purpose.

- `ProbeDetector`: the model's own probes read on the generated audio (the paper's detector):
  re-encode, teacher-forced pass, median probe probability over the top-16 heads, compared with
  the monitor threshold. It shares the model's blind spots, so it is never the only judge.
- `ClassifierJudge`: an instrument classifier that never saw the model's output: log-mel
  statistics (`features.clip_features`) and a standardised logistic regression
  (`fit_classifier`), trained on rendered stem mixes. It runs at a fixed 16 kHz whatever the
  model's rate. `ClapJudge` adds a pretrained zero-shot tagger when a local CLAP checkpoint is
  given (nothing can be downloaded offline).

The second independent judge, a CNN on log-mel frames, is `cnn.CNNJudge`.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..activations import capture
from ..audio import resample
from ..backbone import Backbone
from ..monitor import confidence
from ..probes import ProbeSet
from .features import clip_features


def fit_classifier(features: np.ndarray, labels: np.ndarray) -> Any:
    """A standardised, L2-regularised logistic regression (scikit-learn pipeline) on clip features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(features, labels)


class ProbeDetector:
    """The paper's detector: the model's own probes read on (re-encoded) audio.

    Score of a clip = mean over its positions (after `warmup` seconds of context) of C(t), the
    median probe probability over the `heads` best heads; the trait is present when the score
    reaches the monitor threshold `ProbeSet.threshold()` (median(acc) - std(acc)).
    """

    def __init__(self, backbone: Backbone, probes: ProbeSet, heads: int = 16, warmup: float = 1.0) -> None:
        probes.check(backbone)
        self.backbone, self.probes = backbone, probes
        self.top = probes.top(heads)
        self.threshold = probes.threshold()
        self.warmup = warmup

    @torch.no_grad()
    def scores(self, audio: np.ndarray, sample_rate: int, batch: int = 4) -> np.ndarray:
        bb = self.backbone
        audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
        if sample_rate != bb.sample_rate:
            audio = np.stack([resample(a, sample_rate, bb.sample_rate) for a in audio])
        out = []
        for i in range(0, len(audio), batch):
            codes = bb.encode(torch.from_numpy(np.ascontiguousarray(audio[i : i + batch])))
            t = codes.shape[-1]
            skip = min(int(round(self.warmup * bb.frame_rate)), t // 2)
            out.append(self._readings(codes, t - skip).mean(-1))
        return np.concatenate(out)

    def _readings(self, codes: torch.Tensor, last: int) -> np.ndarray:
        """C at each of the last `last` positions of a teacher-forced pass over codes [B, K, T]."""
        z = capture(self.backbone, codes, last=last)  # [B, P, L, H, D]
        p = self.probes.probability(z.float().cpu()).flatten(2)[..., self.top]  # [B, P, 16]
        return confidence(p).numpy()

    @torch.no_grad()
    def window_scores(
        self, audio: np.ndarray, sample_rate: int, seconds: float, window: float = 1.0, batch: int = 4
    ) -> np.ndarray:
        """[N, W]: C averaged over each `window` seconds of the last `seconds` of each clip.

        What comes before (a continuation's prompt) is context only, so the first window reads
        with the music before it, as the monitor did while generating.
        """
        bb = self.backbone
        audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
        if sample_rate != bb.sample_rate:
            audio = np.stack([resample(a, sample_rate, bb.sample_rate) for a in audio])
        per = int(round(window * bb.frame_rate))
        w = int(round(seconds / window))
        out = []
        for i in range(0, len(audio), batch):
            codes = bb.encode(torch.from_numpy(np.ascontiguousarray(audio[i : i + batch])))
            c = self._readings(codes, min(w * per, codes.shape[-1]))
            out.append(c[:, -(w * per) :].reshape(len(c), w, -1).mean(-1))
        return np.concatenate(out)

    def present(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.scores(audio, sample_rate)
        return s >= self.threshold, s


@dataclass
class ClassifierJudge:
    """Logistic regression on log-mel statistics, trained on rendered stem mixes (never model output).

    Present when P(trait) >= `threshold` (0.5 until calibrated).

    `accuracy` holds its held-out accuracy (songs it was not trained on), on original mixes and on
    the same mixes passed through the model's codec (the domain generated audio lives in). Kept as
    plain arrays (standardisation + weights) so it saves as safetensors, never as a pickle.
    """

    trait: str
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    accuracy: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    threshold: float = 0.5  # the experiment calibrates it on real pairs through the codec (Youden's J)

    @classmethod
    def train(
        cls, trait: str, audio: np.ndarray, labels: np.ndarray, sample_rate: int, **info
    ) -> ClassifierJudge:
        """Fit on clips [N, S] with labels (1 = trait present); several domains may be stacked in."""
        labels = np.asarray(labels)
        if len(set(labels.tolist())) < 2:
            raise ValueError(f"the {trait} classifier needs clips with and without {trait}")
        pipeline = fit_classifier(clip_features(audio, sample_rate), labels)
        scaler, lr = pipeline[0], pipeline[-1]
        return cls(
            trait,
            scaler.mean_.astype(np.float64),
            scaler.scale_.astype(np.float64),
            lr.coef_[0].astype(np.float64),
            float(lr.intercept_[0]),
            info={"train_clips": int(len(labels)), **info},
        )

    def proba(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """P(trait present), as scikit-learn's predict_proba of the fitted pipeline."""
        z = ((clip_features(audio, sample_rate) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def present(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        p = self.proba(audio, sample_rate)
        return p >= self.threshold, p

    def score(self, audio: np.ndarray, labels: np.ndarray, sample_rate: int) -> float:
        return float((self.present(audio, sample_rate)[0] == np.asarray(labels).astype(bool)).mean())

    def save(self, path: str | Path) -> Path:
        """safetensors arrays + JSON metadata (trait, accuracy, info)."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "mean": self.mean,
            "scale": self.scale,
            "coef": self.coef,
            "intercept": np.array([self.intercept]),
        }
        meta = {
            "trait": self.trait,
            "accuracy": self.accuracy,
            "info": self.info,
            "threshold": self.threshold,
        }
        save_file(arrays, str(path), metadata={"smitin_judge": json.dumps(meta)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> ClassifierJudge:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads(f.metadata()["smitin_judge"])
            a = {k: f.get_tensor(k) for k in ("mean", "scale", "coef", "intercept")}
        return cls(
            meta["trait"],
            a["mean"],
            a["scale"],
            a["coef"],
            float(a["intercept"][0]),
            meta["accuracy"],
            meta["info"],
            float(meta.get("threshold", 0.5)),
        )


class ClapJudge:
    """Zero-shot tagging with a local CLAP checkpoint (transformers `ClapModel`), optional.

    Present when "music with {trait}" beats "music without {trait}". Also gives clip embeddings
    for a CLAP FAD. Give a folder made by `save_pretrained` (e.g. laion/clap-htsat-unfused).
    """

    def __init__(self, path: str | Path) -> None:
        from transformers import ClapModel, ClapProcessor

        self.model = ClapModel.from_pretrained(path).eval()
        self.processor = ClapProcessor.from_pretrained(path)
        self.rate = int(self.processor.feature_extractor.sampling_rate)
        self.name = f"CLAP ({Path(path).name})"

    @torch.no_grad()
    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        clips = [resample(a, sample_rate, self.rate) for a in np.atleast_2d(audio)]
        inputs = self.processor(audio=clips, sampling_rate=self.rate, return_tensors="pt")
        return self.model.get_audio_features(**inputs).numpy()

    @torch.no_grad()
    def proba(self, audio: np.ndarray, sample_rate: int, trait: str) -> np.ndarray:
        a = torch.from_numpy(self.embed(audio, sample_rate))
        texts = [f"music with {trait}", f"music without {trait}"]
        t = self.model.get_text_features(**self.processor(text=texts, return_tensors="pt", padding=True))
        a, t = a / a.norm(dim=-1, keepdim=True), t / t.norm(dim=-1, keepdim=True)
        return torch.softmax(100 * a @ t.T, -1)[:, 0].numpy()


def optional_judges(clap: str | Path | None) -> tuple[ClapJudge | None, list[str]]:
    """Load the optional pretrained judges that are available; messages say what was skipped and why."""
    notes = []
    judge = None
    if clap is None:
        notes.append(
            "CLAP judge skipped: no --clap folder given (pretrained weights cannot be downloaded here; "
            "pass a local laion/clap-htsat-* folder saved with save_pretrained)"
        )
    else:
        try:
            judge = ClapJudge(clap)
        except (OSError, ValueError, ImportError) as err:
            notes.append(f"CLAP judge skipped: cannot load {clap}: {err}")
    for module, what in (("fadtk", "VGGish/CLAP FAD via fadtk"), ("hear21passt", "PaSST tagger")):
        if importlib.util.find_spec(module) is None:
            notes.append(
                f"{what} skipped: `{module}` is not installed (pip install {module}, then give it local weights)"
            )
        else:
            notes.append(
                f"{what}: `{module}` is installed but fetches its weights at run time, which fails offline; "
                "not run"
            )
    return judge, notes
