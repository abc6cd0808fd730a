"""Which heads move the next token towards the trait? Teacher-forced effects of one-head edits.

Trait codes: per codebook, the codes at least twice as frequent in excerpts with the trait as in
the same excerpts without it (codes seen fewer than 8 times are left out). An edit's effect: over
trait-free contexts, teacher-forced with the edit added at every position (what a generation's
KV cache holds when every step is edited), the change of the log-odds of the next-token
probability mass on trait codes (mean over codebooks and positions after the first second, or half the clip), and
its cost, the KL divergence from the edited to the unedited distribution (nats per token). Per
head (alpha * sigma along the direction, that head alone) and per layer (all its heads); the
Spearman correlation of probe accuracy with the per-head effect says whether ranking heads by
accuracy finds the lever. Contexts: up to 16 evaluation clips without the trait. How well the metric reads the trait at all: the AUC of the unedited
log-odds between contexts with and without the trait.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from ..backbone import Backbone
from ..experiment.metrics import auc
from .context import Context


def encode(bb: Backbone, audio: np.ndarray, batch: int = 16) -> torch.Tensor:
    """[N, S] clips -> codes [N, K, T] on the CPU."""
    with torch.no_grad():
        return torch.cat(
            [
                bb.encode(torch.from_numpy(np.ascontiguousarray(audio[i : i + batch], np.float32))).cpu()
                for i in range(0, len(audio), batch)
            ]
        )


def trait_codes(pos: torch.Tensor, neg: torch.Tensor, vocab: int) -> torch.Tensor:
    """[K, V] bool: codes at least twice as frequent with the trait as without (add-one smoothed)."""
    sel = torch.zeros(pos.shape[1], vocab, dtype=torch.bool)
    for k in range(pos.shape[1]):
        hp = torch.bincount(pos[:, k].flatten(), minlength=vocab)[:vocab].float()
        hn = torch.bincount(neg[:, k].flatten(), minlength=vocab)[:vocab].float()
        ratio = torch.log((hp + 1) / (hp.sum() + vocab)) - torch.log((hn + 1) / (hn.sum() + vocab))
        sel[k] = (ratio > math.log(2.0)) & ((hp + hn) >= 8)
    return sel


CONTEXTS = 16  # trait-free contexts: every head of a large model costs one pass over them

Hook = Callable[[int, torch.Tensor], torch.Tensor | None]


def logits(bb: Backbone, codes: torch.Tensor, hook: Hook | None = None, batch: int = 8) -> torch.Tensor:
    """Teacher-forced next-token logits [N, K, T + 1, V] under the null text condition."""
    n, k, t = codes.shape
    out = []
    with torch.no_grad():
        for i in range(0, n, batch):
            c = codes[i : i + batch].to(bb.device)
            ids = bb.delayed_input_ids(c)
            with bb.head_hooks(hook) if hook is not None else nullcontext():
                raw = bb.model(**bb.null_condition(len(c)), decoder_input_ids=ids, use_cache=False).logits
            out.append(raw.reshape(len(c), k, t + 1, -1).float().cpu())
    return torch.cat(out)


def trait_logodds(logp: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """[N, K, P] log-odds of the probability mass on trait codes, from log-probabilities [N, K, P, V]."""
    mass = torch.logsumexp(logp.masked_fill(~sel[None, :, None, :], float("-inf")), -1)
    return mass - torch.log1p(-mass.exp().clamp(max=1 - 1e-6))


def add_hook(shifts: dict[int, torch.Tensor]) -> Hook:
    """A head hook adding shifts[layer] [H*D] at every position of that layer's heads."""

    def hook(layer: int, x: torch.Tensor) -> torch.Tensor | None:
        return x + shifts[layer].to(x.device, x.dtype) if layer in shifts else None

    return hook


def analyse(ctx: Context) -> dict[str, Any]:
    bb, s = ctx.backbone, ctx.settings
    lay = bb.layout
    vocab = int(bb.model.config.decoder.vocab_size)
    pos, neg = ctx.pairs("probe")
    sel = trait_codes(encode(bb, pos), encode(bb, neg), vocab)
    epos, eneg = ctx.pairs("eval")
    contexts = encode(bb, eneg[:CONTEXTS])
    end = contexts.shape[-1] - 3  # the delay pattern leaves the last frames incomplete
    start = min(int(round(bb.frame_rate)), end // 2)  # after a second of context, or half the clip
    if end - start < 2:
        raise ValueError(
            f"clips of {s.duration:g} s are too short for the causal analysis; use --duration 1 or more"
        )

    def window(lg: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(lg[:, :, start:end], -1)

    base = window(logits(bb, contexts))
    base_lo = trait_logodds(base, sel)
    with_trait = trait_logodds(window(logits(bb, encode(bb, epos[:CONTEXTS]))), sel).mean((1, 2))
    labels = np.r_[np.ones(len(with_trait)), np.zeros(len(base_lo))]
    read = auc(labels, np.r_[with_trait.numpy(), base_lo.mean((1, 2)).numpy()])

    def effect(shifts: dict[int, torch.Tensor]) -> dict[str, float]:
        lp = window(logits(bb, contexts, add_hook(shifts)))
        kl = (lp.exp() * (lp - base)).sum(-1).mean()
        return {"d_logodds": float((trait_logodds(lp, sel) - base_lo).mean()), "kl": float(kl)}

    acc = ctx.probes.accuracy.flatten().numpy()
    out: dict[str, Any] = {
        "contexts": len(contexts),
        "trait_codes_per_codebook": sel.sum(1).tolist(),
        "metric_auc_with_vs_without": read,
        "alpha": s.alpha,
        "directions": {},
    }
    for direction in ("mass_mean", "probe"):
        unit, sigma = ctx.probes.steering_vectors(direction)
        size = s.alpha * sigma.float()[..., None] * unit.float()  # [L, H, D]
        heads = []
        for flat in range(lay.layers * lay.heads):
            layer, h = divmod(flat, lay.heads)
            v = torch.zeros(lay.heads, lay.head_dim)
            v[h] = size[layer, h]
            heads.append(effect({layer: v.flatten()}))
        layers = [effect({layer: size[layer].flatten()}) for layer in range(lay.layers)]
        d = np.array([e["d_logodds"] for e in heads])
        top_acc, top_eff = set(np.argsort(-acc)[:16].tolist()), set(np.argsort(-d)[:16].tolist())
        out["directions"][direction] = {
            "per_head": heads,
            "per_layer": layers,
            "best_heads_by_effect": [divmod(int(i), lay.heads) for i in np.argsort(-d)[:8]],
            "spearman_accuracy_vs_effect": float(spearmanr(acc, d).statistic),
            "top16_overlap_accuracy_vs_effect": len(top_acc & top_eff),
            "top16_overlap_by_chance": 16 * 16 / len(acc),
        }
    return out
