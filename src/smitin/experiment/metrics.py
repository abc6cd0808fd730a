"""Quality, coherence and agreement numbers: FAD, similarity, token likelihood, AUC, correlation.

Quality: Frechet distance between sets of window embeddings (`features.window_embeddings`).
Coherence: cosine similarity of z-scored embeddings of prompt and continuation, and the unsteered
model's token log-likelihood on generated codes. `auc` and `pearson` score and compare judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..backbone import Backbone
from .features import WINDOW_SECONDS, window_embeddings


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


def auc(labels: Sequence | np.ndarray, scores: Sequence | np.ndarray) -> float:
    """Area under the ROC curve (share of positive/negative pairs ranked right, ties half): threshold-free."""
    y, s = np.asarray(labels).astype(bool), np.asarray(scores, float)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def pearson(a: Sequence | np.ndarray, b: Sequence | np.ndarray) -> float:
    """Correlation, NaN when either side is constant (agreement is then undefined, not perfect)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])
