"""Judges and metrics for generated music: is the trait there, how real does it sound, does it cohere.

Two ways to decide "the trait is present", kept apart on purpose:

- `ProbeDetector`: the model's own probes read on the generated audio (the paper's detector):
  re-encode, teacher-forced pass, median probe probability over the top-16 heads, compared with
  the monitor threshold. It shares the model's blind spots, so it is never the only judge.
- `ClassifierJudge`: an instrument classifier that never saw the model's output: log-mel
  statistics (`clip_features`) and a standardised logistic regression (`fit_classifier`),
  trained on rendered stem mixes. It runs at a fixed 16 kHz
  whatever the model's rate. `ClapJudge` adds a pretrained zero-shot tagger when a local CLAP
  checkpoint is given (nothing can be downloaded offline).

Quality and coherence: Frechet distance between sets of window embeddings (`window_embeddings`:
log-mel band statistics per 0.5 s window), cosine similarity of z-scored embeddings, and the
unsteered model's token log-likelihood on generated codes.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .activations import capture
from .audio import resample
from .backbone import Backbone
from .monitor import confidence
from .probes import ProbeSet

JUDGE_RATE = 16000  # the classifier and embeddings always listen at this rate
WINDOW_SECONDS = 0.5  # one embedding per window: FAD needs many samples per set
BANDS = 20  # 80 mel bands pooled to 20 -> 40-d embeddings (mean, std per band)


# ----------------------------------------------------------------------------- front end
_FRONTEND: Any = None


def frontend():
    """A mel analyser (the mel codec's, unfitted: only its STFT + filterbank are used) at 16 kHz."""
    global _FRONTEND
    if _FRONTEND is None:
        from .codec import MelCodecConfig, MelCodecModel

        _FRONTEND = MelCodecModel(MelCodecConfig(sampling_rate=JUDGE_RATE)).eval()
    return _FRONTEND


def at_judge_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N, S] clips -> [N, S'] float32 at 16 kHz."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    if sample_rate == JUDGE_RATE:
        return audio
    return np.stack([resample(a, sample_rate, JUDGE_RATE) for a in audio])


def clip_features(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[N, S] -> [N, 240] log-mel statistics per clip: band means, stds, mean absolute frame change.

    Deliberately simple (what a logistic regression on log-mel statistics can see); clips are
    RMS-normalised first, so loudness alone never decides.
    """
    from .audio import normalise_loudness

    x = torch.from_numpy(np.stack([normalise_loudness(a) for a in at_judge_rate(audio, sample_rate)]))
    with torch.no_grad():
        lm = frontend().log_mel(x)  # [N, T, 80]
    diff = (lm[:, 1:] - lm[:, :-1]).abs().mean(1)
    return torch.cat([lm.mean(1), lm.std(1), diff], dim=1).numpy()


def fit_classifier(features: np.ndarray, labels: np.ndarray) -> Any:
    """A standardised, L2-regularised logistic regression (scikit-learn pipeline) on clip features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(features, labels)


def window_embeddings(audio: np.ndarray, sample_rate: int, seconds: float = WINDOW_SECONDS) -> np.ndarray:
    """[N, S] -> [N, W, 2 * BANDS]: per window, mean and std of log-mel pooled into BANDS bands.

    Clips are RMS-normalised first, so loudness alone never separates two sets.
    """
    from .audio import normalise_loudness

    x = at_judge_rate(audio, sample_rate)
    x = np.stack([normalise_loudness(a) for a in x])
    with torch.no_grad():
        lm = frontend().log_mel(torch.from_numpy(x))  # [N, T, 80]
    n, t, m = lm.shape
    lm = lm[..., : m - m % BANDS].reshape(n, t, BANDS, -1).mean(-1)
    hop = frontend().config.hop_length
    per = max(1, int(round(seconds * JUDGE_RATE / hop)))
    w = max(1, t // per)
    win = lm[:, : w * per].reshape(n, w, per, BANDS)
    return torch.cat([win.mean(2), win.std(2)], dim=-1).numpy().astype(np.float64)


# ----------------------------------------------------------------------------- metrics
def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two sets of embeddings [n, d] and [m, d].

    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2). Biased upwards on small sets (the
    covariance estimates are noisy), so compare values only between sets of equal size.
    """
    from scipy import linalg

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two sets of >= 2 embeddings of one width, got {a.shape} and {b.shape}")
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(sa @ sb)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as the FAD reference code does
        eps = 1e-6 * np.eye(len(sa))
        covmean = linalg.sqrtm((sa + eps) @ (sb + eps))
    return float(max(0.0, mu @ mu + np.trace(sa) + np.trace(sb) - 2 * np.trace(np.real(covmean))))


def fad(generated: np.ndarray, reference: np.ndarray) -> float:
    """FAD on window embeddings: [N, W, d] sets pooled over clips and windows."""
    return frechet_distance(
        generated.reshape(-1, generated.shape[-1]), reference.reshape(-1, reference.shape[-1])
    )


@dataclass
class Standardiser:
    """z-scores embeddings with a reference set's statistics (so cosines are not all ~1)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, reference: np.ndarray) -> Standardiser:
        flat = reference.reshape(-1, reference.shape[-1])
        return cls(flat.mean(0), flat.std(0) + 1e-8)

    def __call__(self, emb: np.ndarray) -> np.ndarray:
        return (emb - self.mean) / self.std


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of [N, d] arrays (1 for identical rows)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    num = (a * b).sum(-1)
    return num / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)


def continuation_similarity(
    prompt: np.ndarray, cont: np.ndarray, sample_rate: int, standardise: Standardiser, edge: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per clip: (cosine of whole-clip mean embeddings, cosine across the boundary).

    The boundary compares the prompt's last `edge` seconds with the continuation's first ones.
    """
    ep = standardise(window_embeddings(prompt, sample_rate))
    ec = standardise(window_embeddings(cont, sample_rate))
    k = max(1, int(round(edge / WINDOW_SECONDS)))
    whole = cosine(ep.mean(1), ec.mean(1))
    boundary = cosine(ep[:, -k:].mean(1), ec[:, :k].mean(1))
    return whole, boundary


@torch.no_grad()
def token_nll(backbone: Backbone, codes: torch.Tensor, start_frame: int = 0, batch: int = 4) -> np.ndarray:
    """Mean negative log-likelihood (nats per token) of codes [B, K, T] under the model, per clip.

    Teacher-forced under the null text condition; only frames >= `start_frame` are scored (the
    continuation, with the prompt as context). Run it on the UNSTEERED model: the shift against
    unsteered output says how far steering pushed the music off the model's own distribution.
    """
    out = []
    k = backbone.num_codebooks
    for i in range(0, len(codes), batch):
        c = codes[i : i + batch].to(backbone.device)
        b, _, t = c.shape
        ids = backbone.delayed_input_ids(c)  # [B*K, T+1]: position p holds codebook q of frame p-1-q
        logits = backbone.model(**backbone.null_condition(b), decoder_input_ids=ids, use_cache=False).logits
        logp = torch.log_softmax(logits[:, :t].float(), -1)
        target = ids[:, 1:]
        nll = -logp.gather(-1, target.clamp(max=logp.shape[-1] - 1)[..., None])[..., 0]
        frame = (
            torch.arange(t, device=c.device)[None, :] - torch.arange(k, device=c.device)[:, None]
        )  # [K, T]
        mask = (target.reshape(b, k, t) != backbone.pad_token_id) & (frame >= start_frame)[None]
        nll = nll.reshape(b, k, t)
        out.append(((nll * mask).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1)).cpu().numpy())
    return np.concatenate(out)


# ----------------------------------------------------------------------------- judges
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
            z = capture(bb, codes, last=t - skip)  # [B, P, L, H, D]
            p = self.probes.probability(z.float().cpu()).flatten(2)[..., self.top]  # [B, P, 16]
            out.append(confidence(p).mean(-1).numpy())
        return np.concatenate(out)

    def present(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.scores(audio, sample_rate)
        return s >= self.threshold, s


@dataclass
class ClassifierJudge:
    """Logistic regression on log-mel statistics, trained on rendered stem mixes (never model output).

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
        return p >= 0.5, p

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
        meta = {"trait": self.trait, "accuracy": self.accuracy, "info": self.info}
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
        audio = [resample(a, sample_rate, self.rate) for a in np.atleast_2d(audio)]
        inputs = self.processor(audio=audio, sampling_rate=self.rate, return_tensors="pt")
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


def auc(labels, scores) -> float:
    """Area under the ROC curve (share of positive/negative pairs ranked right, ties half): threshold-free."""
    y, s = np.asarray(labels).astype(bool), np.asarray(scores, float)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def pearson(a, b) -> float:
    """Correlation, NaN when either side is constant (agreement is then undefined, not perfect)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
