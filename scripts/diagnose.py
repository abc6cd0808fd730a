"""Diagnose where the steering lever is (issue 12, item 2), on the bundled tiny MusicGen.

Stages (each writes JSON into --out and is skipped when its file exists; --redo NAME forces one):

  probes    per-head probes for every trait, probe direction and mass-mean direction
  judge     an independent judge: a small CNN (plus a log-mel-statistics logistic regression) on
            log-mel frames of CODEC RECONSTRUCTIONS of random stem-subset mixes of a separate
            render (another seed and soundfont); held-out AUC; threshold calibrated on held-out
            real with/without pairs through the codec
  judgeval  the judge on generated audio: text prompts naming the instrument vs "without" it;
            also the probes' monitor reading C(t) on those unsteered generations (calibrated tau)
  codes     "trait codes": per codebook, log-frequency ratio of codes in with- vs without-trait mixes
  causal    teacher-forced next-token effect of edits (change in log-odds mass of trait codes), per
            head pushed alone (probe / mass-mean / gradient direction), per layer, and for whole
            recipes (soft vs top-K, alpha, schedule, CFG rows); Spearman probe-rank vs causal rank
  e2e       paired continuation (same prompts and seed, steered vs unsteered) of trait-free
            prompts, judged by the independent judge, with bootstrap CIs and proxies

Only smitin's public API is used (load, data.stem_segments, train_probes, continue_audio, generate,
Steer, ProbeSet, Backbone.head_hooks/encode/decode) plus own hooks.

    python scripts/diagnose.py --probe-data /work/data/diag-probe --judge-data /work/data/diag-judge \
        --out /work/diag
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import smitin

TRAITS = ("drums", "bass", "guitar", "piano")
STYLES = ("rock", "pop", "jazz", "funk", "ballad", "groove")
T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:7.1f}s] {msg}", flush=True)


def dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=float))


# ----------------------------------------------------------------------------- audio features
_FB: dict = {}


def log_mel(audio: np.ndarray, sr: int, n_mels: int = 64) -> torch.Tensor:
    """[N, S] -> [N, n_mels, T] log-mel (n_fft 1024, hop 320), RMS-normalised clips."""
    from transformers.audio_utils import mel_filter_bank

    if (sr, n_mels) not in _FB:
        fb = mel_filter_bank(513, n_mels, 30.0, sr / 2, sr, norm="slaney", mel_scale="slaney")
        _FB[(sr, n_mels)] = torch.from_numpy(fb).float()  # [513, M]
    x = torch.from_numpy(np.asarray(audio, np.float32))
    x = x / x.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-6) * 0.1
    spec = torch.stft(x, 1024, 320, window=torch.hann_window(1024), return_complex=True).abs() ** 2
    return torch.log(torch.einsum("nft,fm->nmt", spec, _FB[(sr, n_mels)]) + 1e-6)


def stat_features(lm: torch.Tensor) -> np.ndarray:
    diff = (lm[..., 1:] - lm[..., :-1]).abs().mean(-1)
    return torch.cat([lm.mean(-1), lm.std(-1), diff], 1).numpy()


def onset_regularity(audio: np.ndarray, sr: int) -> np.ndarray:
    """Pulse clarity: max normalised autocorrelation of the onset envelope at lags 0.25-1.0 s."""
    lm = log_mel(audio, sr)
    flux = (lm[..., 1:] - lm[..., :-1]).clamp_min(0).mean(1).numpy()  # [N, T]
    fr = sr / 320
    lo, hi = int(0.25 * fr), int(1.0 * fr)
    out = []
    for f in flux:
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[len(f) - 1 :]
        out.append(float(ac[lo:hi].max() / (ac[0] + 1e-9)))
    return np.array(out)


REGISTER = {"bass": (40, 250), "guitar": (200, 1500), "piano": (100, 3000), "drums": (3000, 8000)}


def register_activity(audio: np.ndarray, sr: int, trait: str) -> np.ndarray:
    """Note activity in the trait's register: positive spectral flux within its band, per second."""
    lo, hi = REGISTER[trait]
    n = 128
    from transformers.audio_utils import mel_filter_bank  # noqa: F401  (frequencies below)

    lm = log_mel(audio, sr, n)
    mel = np.linspace(_hz2mel(30.0), _hz2mel(sr / 2), n + 2)[1:-1]
    hz = _mel2hz(mel)
    band = torch.from_numpy((hz >= lo) & (hz <= hi))
    flux = (lm[:, band, 1:] - lm[:, band, :-1]).clamp_min(0).mean(1)  # [N, T]
    return flux.mean(-1).numpy()


def _hz2mel(f):
    f = np.asarray(f, float)
    return np.where(f < 1000, 3 * f / 200, 15 + 27 * np.log(np.maximum(f, 1e-9) / 1000) / np.log(6.4))


def _mel2hz(m):
    m = np.asarray(m, float)
    return np.where(m < 15, 200 * m / 3, 1000 * np.exp((m - 15) * np.log(6.4) / 27))


# ----------------------------------------------------------------------------- stats
def auc(y, s) -> float:
    y, s = np.asarray(y).astype(bool), np.asarray(s, float)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    d = pos[:, None] - neg[None, :]
    return float((d > 0).mean() + 0.5 * (d == 0).mean())


def youden(y, s) -> float:
    """Threshold maximising TPR - FPR (midpoint between neighbouring scores)."""
    y, s = np.asarray(y).astype(bool), np.asarray(s, float)
    cand = np.unique(s)
    mids = np.concatenate([[cand[0] - 1e-6], (cand[1:] + cand[:-1]) / 2, [cand[-1] + 1e-6]])
    best, thr = -1.0, 0.5
    for t in mids:
        j = (s[y] >= t).mean() - (s[~y] >= t).mean()
        if j > best:
            best, thr = j, float(t)
    return thr


def bootstrap_diff(a, b, n=2000, seed=0):
    """Paired mean difference b - a with a 95% bootstrap CI over items."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), (n, len(d)))
    boots = d[idx].mean(1)
    return float(d.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def sign_test(a, b) -> float:
    from scipy.stats import binomtest

    d = np.asarray(b, float) - np.asarray(a, float)
    pos, neg = int((d > 0).sum()), int((d < 0).sum())
    if pos + neg == 0:
        return 1.0
    return float(binomtest(pos, pos + neg, 0.5).pvalue)


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


# ----------------------------------------------------------------------------- stage: probes
def probe_path(out: Path, trait: str, direction: str) -> Path:
    return out / "probes" / f"{trait}-{direction}.safetensors"


def stage_probes(args, model) -> dict:
    res = {}
    for trait in args.traits:
        segs = smitin.data.stem_segments(args.probe_data, trait, sample_rate=model.sample_rate, seconds=3.0)
        for direction in ("probe", "mass_mean"):
            path = probe_path(args.out, trait, direction)
            if path.exists():
                ps = smitin.ProbeSet.load(path)
            else:
                log(f"probes {trait} {direction}: {len(segs)} segments")
                ps = smitin.train_probes(
                    model,
                    segs,
                    cache_dir=args.out / "cache" / f"acts-{trait}",
                    direction=direction,
                    progress=False,
                )
                ps.save(path)
            acc = ps.accuracy.flatten()
            res.setdefault(trait, {})[direction] = {
                "best": float(acc.max()),
                "median": float(acc.median()),
                "top16_mean": float(acc.sort(descending=True).values[:16].mean()),
                "paper_tau": ps.threshold(),
                "accuracy": [round(float(a), 4) for a in acc],
                "segments": len(segs),
            }
        log(
            f"probes {trait}: best {res[trait]['probe']['best']:.3f} tau {res[trait]['probe']['paper_tau']:.3f}"
        )
    return res


def make_steer(ps: smitin.ProbeSet, direction: str, **kwargs) -> smitin.Steer:
    """A Steer along `direction`: newer smitin picks the direction at steer time (its default is
    its own recipe's), older smitin takes it from the probe file, so pin it where supported."""
    if "direction" in getattr(smitin.Steer, "__dataclass_fields__", {}):
        kwargs["direction"] = direction
    return smitin.Steer(ps, **kwargs)


def load_probes(args, trait: str, direction: str = "probe") -> smitin.ProbeSet:
    return smitin.ProbeSet.load(probe_path(args.out, trait, direction))


# ----------------------------------------------------------------------------- stage: judge data
def stem_files(root: Path) -> dict[str, dict[str, Path]]:
    tracks = {}
    for d in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        stems = {f.stem: f for f in sorted(d.glob("*.wav")) if f.stem not in ("mix", "mixture")}
        if len(stems) >= 2:
            tracks[d.name] = stems
    return tracks


def window_activity(stems: dict[str, np.ndarray], lo: int, hi: int, sr: int, gate_db: float = -35.0):
    """Per stem: share of 0.1 s blocks in [lo, hi) within gate_db of the window's mix level."""
    blk = sr // 10
    n = (hi - lo) // blk
    energies = {k: (v[lo : lo + n * blk].reshape(n, blk) ** 2).mean(1) for k, v in stems.items()}
    mix = sum(energies.values())
    level = 10 * np.log10(mix.mean() + 1e-12)
    return {k: float((10 * np.log10(e + 1e-12) >= level + gate_db).mean()) for k, e in energies.items()}


def build_judge_clips(root: Path, sr: int, seconds: float, seed: int, per_window: int = 1):
    """Random stem-subset mixes, each with its partner lacking one present trait; multi-label."""
    rng = np.random.default_rng(seed)
    clips, labels, groups = [], [], []
    n = int(seconds * sr)
    for track, files in stem_files(root).items():
        stems = {k: sf.read(f, dtype="float32", always_2d=True)[0].mean(1) for k, f in files.items()}
        length = min(len(v) for v in stems.values())
        for lo in range(0, length - n + 1, n):
            act = window_activity(stems, lo, lo + n, sr)
            playing = [k for k, a in act.items() if a >= 0.5]
            if not playing:
                continue
            for _ in range(per_window):
                subset = [k for k in playing if rng.random() < 0.6] or [rng.choice(playing)]
                present = [t for t in TRAITS if t in subset]
                variants = [subset]
                if present:
                    drop = rng.choice(present)
                    rest = [k for k in subset if k != drop]
                    if rest:
                        variants.append(rest)
                for v in variants:
                    x = sum(stems[k][lo : lo + n] for k in v)
                    clips.append(x.astype(np.float32))
                    labels.append([int(t in v) for t in TRAITS])
                    groups.append(track)
    return np.stack(clips), np.array(labels), np.array(groups)


def codec_roundtrip(model, audio: np.ndarray, batch: int = 32) -> np.ndarray:
    out = []
    for i in range(0, len(audio), batch):
        x = audio[i : i + batch]
        x = x / np.sqrt((x**2).mean(1, keepdims=True)).clip(1e-6) * 0.1
        out.append(model.decode(model.encode(torch.from_numpy(x))).numpy()[:, : x.shape[1]])
        if i % (batch * 8) == 0:
            log(f"  codec {i}/{len(audio)}")
    return np.concatenate(out)


class CNN(torch.nn.Module):
    def __init__(self, n_out: int = len(TRAITS)) -> None:
        super().__init__()
        layers, c = [], 1
        for w in (16, 32, 64):
            layers += [
                torch.nn.Conv2d(c, w, 3, padding=1),
                torch.nn.BatchNorm2d(w),
                torch.nn.ReLU(),
                torch.nn.MaxPool2d(2),
            ]
            c = w
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(2 * c, n_out)

    def forward(self, lm):  # [N, M, T]
        x = lm - lm.mean((1, 2), keepdim=True)
        h = self.body(x[:, None]).mean(2)  # [N, C, T']
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], 1))


def train_cnn(x: torch.Tensor, y: np.ndarray, epochs: int, seed: int = 0) -> CNN:
    torch.manual_seed(seed)
    net = CNN()
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-3)
    yt = torch.from_numpy(y).float()
    crop = int(x.shape[-1] * 0.75)
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), 32):
            b = perm[i : i + 32]
            start = int(torch.randint(0, x.shape[-1] - crop + 1, (1,)))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(x[b, :, start : start + crop]), yt[b]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(b)
        log(f"  cnn epoch {ep + 1}/{epochs} loss {total / len(x):.3f}")
    return net.eval()


class Judge:
    """CNN probabilities per trait with thresholds calibrated on held-out real pairs through the codec."""

    def __init__(self, net: CNN, thresholds: dict[str, float], sr: int) -> None:
        self.net, self.thr, self.sr = net, thresholds, sr

    @torch.no_grad()
    def proba(self, audio: np.ndarray) -> np.ndarray:
        lm = log_mel(audio, self.sr)
        return torch.cat([torch.sigmoid(self.net(lm[i : i + 64])) for i in range(0, len(lm), 64)]).numpy()

    def present(self, audio: np.ndarray, trait: str) -> tuple[np.ndarray, np.ndarray]:
        p = self.proba(audio)[:, TRAITS.index(trait)]
        return p >= self.thr[trait], p


def stage_judge(args, model) -> dict:
    sr = model.sample_rate
    cache = args.out / "cache" / "judge_clips.npz"
    if cache.exists():
        z = np.load(cache)
        rec, y, g = z["rec"], z["y"], z["g"]
    else:
        log("judge: building stem-subset clips")
        clips, y, g = build_judge_clips(args.judge_data, sr, args.seconds, seed=1)
        log(f"judge: {len(clips)} clips from {len(set(g))} tracks; codec roundtrip")
        rec = codec_roundtrip(model, clips)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, rec=rec.astype(np.float16), y=y, g=g)
    rec = rec.astype(np.float32)
    tracks = np.unique(g)
    rng = np.random.default_rng(0)
    held = rng.permutation(tracks)[: max(2, len(tracks) // 5)]
    val = np.isin(g, held)
    lm = log_mel(rec, sr)
    net = train_cnn(lm[~val], y[~val], args.epochs)
    torch.save(net.state_dict(), args.out / "cache" / "judge_cnn.pt")
    with torch.no_grad():
        p = torch.sigmoid(net(lm[val])).numpy()
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    feats = stat_features(lm)
    res = {"clips": int(len(y)), "train_tracks": int(len(tracks) - len(held)), "held_tracks": int(len(held))}
    res["positives"] = {t: int(y[:, i].sum()) for i, t in enumerate(TRAITS)}
    thr = {}
    for i, t in enumerate(TRAITS):
        lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(
            feats[~val], y[~val, i]
        )
        p_lr = lr.predict_proba(feats[val])[:, 1]
        thr[t] = youden(y[val, i], p[:, i])
        res[t] = {
            "cnn_auc_heldout": auc(y[val, i], p[:, i]),
            "lr_auc_heldout": auc(y[val, i], p_lr),
            "threshold": thr[t],
            "bal_acc_at_threshold": float(
                ((p[y[val, i] == 1, i] >= thr[t]).mean() + (p[y[val, i] == 0, i] < thr[t]).mean()) / 2
            ),
            "heldout_pos": int(y[val, i].sum()),
            "heldout_neg": int((1 - y[val, i]).sum()),
        }
        log(
            f"judge {t}: CNN AUC {res[t]['cnn_auc_heldout']:.3f} LR AUC {res[t]['lr_auc_heldout']:.3f} thr {thr[t]:.3f}"
        )
    res["thresholds"] = thr
    return res


def load_judge(args, model) -> Judge:
    net = CNN()
    net.load_state_dict(torch.load(args.out / "cache" / "judge_cnn.pt"))
    thr = json.loads((args.out / "judge.json").read_text())["thresholds"]
    return Judge(net.eval(), thr, model.sample_rate)


# ----------------------------------------------------------------------------- stage: judgeval
def stage_judgeval(args, model) -> dict:
    judge = load_judge(args, model)
    probes = [load_probes(args, t) for t in args.traits]
    steer = [make_steer(p, "probe", alpha=0.0, monitor=True) for p in probes]  # read C(t), edit nothing
    res = {}
    n = args.n_gen
    for trait in args.traits:
        texts = [f"a {STYLES[i % len(STYLES)]} song with {trait}" for i in range(n)]
        texts += [f"a {STYLES[i % len(STYLES)]} song without {trait}" for i in range(n)]
        log(f"judgeval {trait}: {len(texts)} generations")
        r = smitin.generate(model, texts, steer=steer, duration=args.seconds, seed=0, progress=False)
        label = np.array([1] * n + [0] * n)
        present, p = judge.present(r.audio, trait)
        k = args.traits.index(trait)
        c = r.trace.c[:, :, k].numpy()  # [steps, batch]
        skip = int(model.frame_rate)  # first second: little music yet
        cmean = c[skip:].mean(0)
        ps = probes[k]
        res[trait] = {
            "judge_auc_text_named_vs_without": auc(label, p),
            "judge_presence_named": float(present[:n].mean()),
            "judge_presence_without": float(present[n:].mean()),
            "probe_C_auc_named_vs_without": auc(label, cmean),
            "probe_C_auc_vs_judge": auc(present, cmean) if 0 < present.sum() < len(present) else float("nan"),
            "paper_tau": ps.threshold(),
            "calibrated_tau": youden(label, cmean),
            "C_mean_named": float(cmean[:n].mean()),
            "C_mean_without": float(cmean[n:].mean()),
            "share_steps_C_above_paper_tau_without": float((c[skip:, n:] >= ps.threshold()).mean()),
        }
        res[trait]["share_steps_C_above_calibrated_tau_without"] = float(
            (c[skip:, n:] >= res[trait]["calibrated_tau"]).mean()
        )
        log(f"judgeval {trait}: {json.dumps({k2: round(v, 3) for k2, v in res[trait].items()})}")
    return res


def stage_calib(args, model) -> dict:
    """Monitor threshold calibrated where the monitor works: unsteered CONTINUATIONS of prompts with
    and without the trait (alpha 0: the hooks read C(t) and edit nothing), labelled by the
    independent judge. tau = the Youden-optimal cut of the per-clip mean C (after 1 s)."""
    judge = load_judge(args, model)
    sr = model.sample_rate
    res = {}
    n = args.n_gen
    for trait in args.traits:
        ps = load_probes(args, trait)
        segs = smitin.data.stem_segments(args.judge_data, trait, sample_rate=sr, seconds=args.prompt_seconds)
        lab, grp = segs.labels(), np.array(segs.groups())
        rng = np.random.default_rng(7)
        idx = []
        for cls in (1, 0):
            seen = set()
            for i in rng.permutation(np.flatnonzero(lab == cls)):
                if grp[i] not in seen:
                    idx.append(int(i))
                    seen.add(grp[i])
                if len(seen) >= n:
                    break
        prompts = segs.load(idx)
        prompt_label = np.array([int(lab[i]) for i in idx])
        log(f"calib {trait}: {len(idx)} unsteered continuations")
        out = smitin.continue_audio(
            model,
            list(prompts),
            sr,
            steer=[make_steer(ps, "probe", alpha=0.0, monitor=True)],
            duration=args.seconds,
            seed=1,
            progress=False,
        )
        cont = out.audio[:, prompts.shape[1] :]
        present, p = judge.present(cont, trait)
        c = out.trace.c[:, :, 0].numpy()
        skip = int(model.frame_rate)
        cm = c[skip:].mean(0)
        ok = 0 < present.sum() < len(present)
        res[trait] = {
            "n": len(idx),
            "judge_presence_with_prompt": float(present[prompt_label == 1].mean()),
            "judge_presence_without_prompt": float(present[prompt_label == 0].mean()),
            "judge_auc_prompt_label": auc(prompt_label, p),
            "C_auc_vs_judge": auc(present, cm) if ok else float("nan"),
            "C_auc_vs_prompt_label": auc(prompt_label, cm),
            "paper_tau": ps.threshold(),
            "calibrated_tau": youden(present, cm) if ok else youden(prompt_label, cm),
            "C_mean_judge_present": float(cm[present].mean()) if present.any() else float("nan"),
            "C_mean_judge_absent": float(cm[~present].mean()) if (~present).any() else float("nan"),
            "C_mean_prompt_without": float(cm[prompt_label == 0].mean()),
        }
        r = res[trait]
        for name in ("paper", "calibrated"):
            tau = r[f"{name}_tau"]
            r[f"steps_C_above_{name}_tau_prompt_without"] = float((c[skip:, prompt_label == 0] >= tau).mean())
            r[f"steps_C_above_{name}_tau_prompt_with"] = float((c[skip:, prompt_label == 1] >= tau).mean())
        log(f"calib {trait}: {json.dumps({k: round(v, 3) for k, v in r.items()})}")
    return res


def stage_proxies(args, model) -> dict:
    """Do the proxies separate real with/without-trait clips (codec reconstructions of the judge's
    stem-subset mixes)? Reports mean difference and AUC of onset regularity and register activity."""
    z = np.load(args.out / "cache" / "judge_clips.npz")
    rec, y = z["rec"].astype(np.float32), z["y"]
    sr = model.sample_rate
    onset = np.concatenate([onset_regularity(rec[i : i + 128], sr) for i in range(0, len(rec), 128)])
    res = {}
    for i, trait in enumerate(TRAITS):
        reg = np.concatenate(
            [register_activity(rec[j : j + 128], sr, trait) for j in range(0, len(rec), 128)]
        )
        lab = y[:, i]
        res[trait] = {
            "onset_regularity_with_minus_without": float(onset[lab == 1].mean() - onset[lab == 0].mean()),
            "onset_regularity_auc": auc(lab, onset),
            "register_activity_with_minus_without": float(reg[lab == 1].mean() - reg[lab == 0].mean()),
            "register_activity_auc": auc(lab, reg),
        }
        log(f"proxies {trait}: {json.dumps({k: round(v, 3) for k, v in res[trait].items()})}")
    return res


# ----------------------------------------------------------------------------- stage: codes
def segment_codes(model, segs, idx, batch=32) -> torch.Tensor:
    out = []
    for i in range(0, len(idx), batch):
        out.append(model.encode(torch.from_numpy(segs.load(idx[i : i + batch]))).cpu())
    return torch.cat(out)


def stage_codes(args, model) -> dict:
    res = {}
    V = int(model.model.config.decoder.vocab_size)
    for trait in args.traits:
        segs = smitin.data.stem_segments(args.probe_data, trait, sample_rate=model.sample_rate, seconds=3.0)
        lab = segs.labels()
        rng = np.random.default_rng(0)
        pos = rng.permutation(np.flatnonzero(lab == 1))[: args.n_code_segments]
        neg = rng.permutation(np.flatnonzero(lab == 0))[: args.n_code_segments]
        cp, cn = segment_codes(model, segs, pos), segment_codes(model, segs, neg)  # [N, K, T]
        K = cp.shape[1]
        ratio = torch.zeros(K, V)
        for k in range(K):
            hp = torch.bincount(cp[:, k].flatten(), minlength=V)[:V].float()
            hn = torch.bincount(cn[:, k].flatten(), minlength=V)[:V].float()
            ratio[k] = torch.log((hp + 1) / (hp.sum() + V)) - torch.log((hn + 1) / (hn.sum() + V))
            ratio[k][(hp + hn) < 8] = 0.0
        sel = ratio > math.log(2.0)
        torch.save({"ratio": ratio, "sel": sel}, args.out / "cache" / f"codes-{trait}.pt")
        res[trait] = {
            "segments": [len(pos), len(neg)],
            "trait_codes_per_codebook": sel.sum(1).tolist(),
        }
        # validation on the other render: does the unsteered model put more trait-code mass after
        # with-trait contexts than after without-trait ones?
        jsegs = smitin.data.stem_segments(args.judge_data, trait, sample_rate=model.sample_rate, seconds=3.0)
        jl = jsegs.labels()
        jp = rng.permutation(np.flatnonzero(jl == 1))[:24]
        jn = rng.permutation(np.flatnonzero(jl == 0))[:24]
        codes = segment_codes(model, jsegs, np.concatenate([jp, jn]))
        m = trait_metric(model, codes, sel.to(model.device), ratio)
        y = np.array([1] * len(jp) + [0] * len(jn))
        res[trait]["validation_auc_logodds_mass"] = auc(y, m["logodds"])
        res[trait]["validation_auc_expected_ratio"] = auc(y, m["expected_ratio"])
        res[trait]["frequency_auc_in_codes"] = auc(y, _code_score(codes, sel))
        log(f"codes {trait}: {json.dumps(res[trait])}")
    return res


def _code_score(codes, sel) -> np.ndarray:
    K = codes.shape[1]
    return np.array([float(np.mean([sel[k][c[k]].float().mean() for k in range(K)])) for c in codes])


def load_codes(args, trait):
    d = torch.load(args.out / "cache" / f"codes-{trait}.pt")
    return d["sel"], d["ratio"]


@torch.no_grad()
def forward_logits(model, codes: torch.Tensor, hook=None, grad: bool = False):
    """Teacher-forced logits [B, K, P, V] under the null condition, with an optional head hook."""
    b, K, t = codes.shape
    ids = model.delayed_input_ids(codes.to(model.device))
    ctx = model.head_hooks(hook) if hook is not None else _null()
    with ctx, torch.set_grad_enabled(grad):
        logits = model.model(**model.null_condition(b), decoder_input_ids=ids, use_cache=False).logits
    return logits.reshape(b, K, t + 1, -1)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def metric_from_logits(logits: torch.Tensor, sel: torch.Tensor, ratio: torch.Tensor, start: int, end: int):
    """Per clip: mean over codebooks and positions [start, end) of logit(mass of trait codes), and E_p[ratio]."""
    lp = torch.log_softmax(logits[:, :, start:end].float(), -1)  # [B, K, P, V]
    masked = lp.masked_fill(~sel[None, :, None, :], float("-inf"))
    lm = torch.logsumexp(masked, -1)  # log mass
    logodds = lm - torch.log1p(-lm.exp().clamp(max=1 - 1e-6))
    er = (lp.exp() * ratio.to(lp.device)[None, :, None, :]).sum(-1)
    return logodds, er  # [B, K, P]


def trait_metric(model, codes, sel, ratio, start=50) -> dict:
    t = codes.shape[-1]
    logits = forward_logits(model, codes)
    lo, er = metric_from_logits(logits, sel, ratio, start, t - 3)
    return {"logodds": lo.mean((1, 2)).cpu().numpy(), "expected_ratio": er.mean((1, 2)).cpu().numpy()}


# ----------------------------------------------------------------------------- stage: causal
def edit_hook(shifts: dict[int, torch.Tensor], positions: torch.Tensor | None = None, scale_rows=None):
    """shifts: layer -> [H*D] (or [R, H*D] per row) added at the given positions (all when None)."""

    def fn(layer, x):
        if layer not in shifts:
            return None
        s = shifts[layer]
        s = s if s.dim() == 2 else s[None]
        y = x.clone()
        if positions is None:
            y += s[:, None, :]
        else:
            y[:, positions] += s[:, None, :]
        return y

    return fn


def context_codes(args, model, trait, root, n, seed) -> torch.Tensor:
    """Codes of n without-trait mixes (one per track where possible) from `root`."""
    segs = smitin.data.stem_segments(root, trait, sample_rate=model.sample_rate, seconds=args.seconds)
    lab, grp = segs.labels(), np.array(segs.groups())
    rng = np.random.default_rng(seed)
    idx, seen = [], set()
    for i in rng.permutation(np.flatnonzero(lab == 0)):
        if grp[i] not in seen:
            idx.append(int(i))
            seen.add(grp[i])
        if len(idx) >= n:
            break
    if len(idx) < n:
        extra = [int(i) for i in rng.permutation(np.flatnonzero(lab == 0)) if int(i) not in idx]
        idx += extra[: n - len(idx)]
    return segment_codes(model, segs, np.array(idx))


def head_shift(layout, ps_dir: torch.Tensor, sigma: torch.Tensor, layer: int, h: int, alpha: float):
    v = torch.zeros(layout.heads * layout.head_dim)
    d = layout.head_dim
    v[h * d : (h + 1) * d] = alpha * float(sigma[layer, h]) * ps_dir[layer, h].float()
    return v


def recipe_shifts(ps: smitin.ProbeSet, heads, alpha: float, direction=None, sigma=None) -> dict:
    st = smitin.Steer(ps, alpha=alpha, heads=heads)
    w = st.head_weights()
    direction = ps.direction if direction is None else direction
    sigma = ps.sigma if sigma is None else sigma
    per = alpha * w * sigma.float()
    full = (per[..., None] * direction.float()).flatten(1)  # [L, H*D]
    return {layer: full[layer] for layer in range(full.shape[0]) if full[layer].abs().sum() > 0}


def effect(model, codes, base_lp, sel, ratio, shifts, positions=None, start=50) -> dict:
    """Mean change of trait log-odds (and E[ratio]) and KL to the unedited distribution.

    Returns {"both": ..., "cond": ...}: with a null text condition both CFG rows see the same
    input, so editing both rows gives the edited model's logits, and editing only the conditional
    row gives u + g * (c' - u) = base + 3 * (edited - base) at guidance 3 (one forward serves both).
    """
    t = codes.shape[-1]
    edited = forward_logits(model, codes, edit_hook(shifts, positions)).float()
    out = {}
    for rows, g in (("both", 1.0), ("cond", 3.0)):
        logits = edited if g == 1.0 else base_lp["logits"] + g * (edited - base_lp["logits"])
        lo, er = metric_from_logits(logits, sel, ratio, start, t - 3)
        lp = torch.log_softmax(logits[:, :, start : t - 3], -1)
        kl = (lp.exp() * (lp - base_lp["lp"])).sum(-1).mean()
        out[rows] = {
            "d_logodds": float((lo - base_lp["lo"]).mean()),
            "d_expected_ratio": float((er - base_lp["er"]).mean()),
            "kl": float(kl),
        }
    return out


def base_state(model, codes, sel, ratio, start=50):
    t = codes.shape[-1]
    logits = forward_logits(model, codes).float()
    lo, er = metric_from_logits(logits, sel, ratio, start, t - 3)
    return {"logits": logits, "lp": torch.log_softmax(logits[:, :, start : t - 3], -1), "lo": lo, "er": er}


def grad_direction(model, codes, sel, ratio, start=50) -> torch.Tensor:
    """Per head: unit gradient of the trait log-odds w.r.t. an additive edit at every position."""
    lay = model.layout
    delta = torch.zeros(lay.layers, lay.heads * lay.head_dim, requires_grad=True)

    def fn(layer, x):
        return x + delta[layer]

    t = codes.shape[-1]
    grads = torch.zeros_like(delta)
    for i in range(0, len(codes), 8):
        c = codes[i : i + 8]
        ids = model.delayed_input_ids(c.to(model.device))
        with model.head_hooks(fn), torch.enable_grad():
            logits = model.model(
                **model.null_condition(len(c)), decoder_input_ids=ids, use_cache=False
            ).logits
            lo, _ = metric_from_logits(
                logits.reshape(len(c), codes.shape[1], t + 1, -1), sel, ratio, start, t - 3
            )
            g = torch.autograd.grad(lo.mean() * len(c), delta)[0]
        grads += g
    g = grads.reshape(lay.layers, lay.heads, lay.head_dim)
    return g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def capture_sigma(model, codes, direction: torch.Tensor) -> torch.Tensor:
    """Std of head activations projected on `direction` [L, H, D] over the given contexts."""
    lay = model.layout
    acc = {}

    def fn(layer, x):
        z = x.reshape(x.shape[0], x.shape[1], lay.heads, lay.head_dim)
        acc.setdefault(layer, []).append(
            torch.einsum("bthd,hd->bth", z.float(), direction[layer]).flatten(0, 1)
        )
        return None

    forward_logits(model, codes, fn)
    return torch.stack([torch.cat(acc[layer]).std(0) for layer in range(lay.layers)])


def stage_causal(args, model) -> dict:
    lay = model.layout
    partial = args.out / "cache" / "causal-partial.json"  # resumable: one trait at a time
    res = json.loads(partial.read_text()) if partial.exists() else {}
    for trait in args.traits:
        if trait in res:
            continue
        log(f"causal {trait}")
        sel, ratio = load_codes(args, trait)
        pp, pm = load_probes(args, trait, "probe"), load_probes(args, trait, "mass_mean")
        ctx = context_codes(args, model, trait, args.judge_data, args.n_ctx, seed=3)  # evaluation contexts
        fit_ctx = context_codes(args, model, trait, args.probe_data, args.n_ctx, seed=4)  # fitting contexts
        gdir = grad_direction(model, fit_ctx, sel, ratio)
        gsig = capture_sigma(model, fit_ctx, gdir)
        base = base_state(model, ctx, sel, ratio)
        dirs = {
            "probe": (pp.direction, pp.sigma),
            "mass_mean": (pm.direction, pm.sigma),
            "grad": (gdir, gsig),
        }
        r = {"base_logodds": float(base["lo"].mean()), "single_head": {}, "cosines": {}}
        alpha = args.causal_alpha
        for name, (d, s) in dirs.items():
            eff = []
            for idx in range(lay.layers * lay.heads):
                layer, h = divmod(idx, lay.heads)
                e = effect(model, ctx, base, sel, ratio, {layer: head_shift(lay, d, s, layer, h, alpha)})[
                    "both"
                ]
                eff.append(e)
            r["single_head"][name] = eff
            log(f"  single-head {name}: max d_logodds {max(e['d_logodds'] for e in eff):.3f}")
        cos = lambda a, b: (a.float() * b.float()).sum(-1).flatten().tolist()  # noqa: E731
        r["cosines"] = {
            "probe_vs_mass_mean": cos(pp.direction, pm.direction),
            "probe_vs_grad": cos(pp.direction, gdir),
            "mass_mean_vs_grad": cos(pm.direction, gdir),
        }
        acc = pp.accuracy.flatten().numpy()
        ce = np.array([e["d_logodds"] for e in r["single_head"]["probe"]])
        ce_mm = np.array([e["d_logodds"] for e in r["single_head"]["mass_mean"]])
        top_acc, top_ce = set(np.argsort(-acc)[:16]), set(np.argsort(-ce)[:16])
        r["ranking"] = {
            "spearman_acc_vs_effect_probe": spearman(acc, ce),
            "spearman_acc_vs_effect_mass_mean": spearman(acc, ce_mm),
            "top16_overlap": len(top_acc & top_ce),
            "top8_overlap": len(set(np.argsort(-acc)[:8]) & set(np.argsort(-ce)[:8])),
            "expected_overlap_top16_by_chance": 16 * 16 / (lay.layers * lay.heads),
        }
        # per layer: all heads of one layer, weight 1, probe and mass-mean direction
        r["per_layer"] = {}
        for name in ("probe", "mass_mean", "grad"):
            d, s = dirs[name]
            rows = []
            for layer in range(lay.layers):
                v = torch.cat([alpha * float(s[layer, h]) * d[layer, h].float() for h in range(lay.heads)])
                rows.append(effect(model, ctx, base, sel, ratio, {layer: v})["both"])
            r["per_layer"][name] = rows
        # recipes: heads x direction x alpha x schedule x rows
        t = ctx.shape[-1]
        every5 = torch.arange(0, t + 1) % 5 == 0
        recipes = []
        causal_top = torch.from_numpy(np.argsort(-ce)[:16].copy())
        for name in ("probe", "mass_mean", "grad"):
            d, s = dirs[name]
            for heads in ("soft", 16, 8, "causal16"):
                if heads == "soft" and name == "grad":
                    continue
                for a in (0.5, 1.0, 2.0, 5.0, 10.0, 20.0):
                    if heads == "causal16":
                        w = torch.zeros(lay.layers * lay.heads)
                        w[causal_top] = 1.0
                        full = (a * w.reshape(lay.layers, lay.heads) * s.float())[..., None] * d.float()
                        full = full.flatten(1)
                        sh = {layer: full[layer] for layer in range(lay.layers)}
                    else:
                        sh = recipe_shifts(pp, heads, a, d, s)
                    for every, pos in ((1, None), (5, every5)):
                        both = effect(model, ctx, base, sel, ratio, sh, pos)
                        for rows, e in both.items():
                            recipes.append(
                                {
                                    "direction": name,
                                    "heads": heads,
                                    "alpha": a,
                                    "every": every,
                                    "rows": rows,
                                    **e,
                                }
                            )
        r["recipes"] = recipes
        log(
            "  recipes: best d_logodds " + json.dumps(max(recipes, key=lambda x: x["d_logodds"]), default=str)
        )
        res[trait] = r
        dump(partial, res)
    return res


# ----------------------------------------------------------------------------- stage: e2e
def parse_recipe(spec: str) -> dict:
    """'name:heads=16,direction=mass_mean,every=1,rows=both,alpha=5,monitor=0,tau=paper|cal|<float>'."""
    name, _, rest = spec.partition(":")
    r = {"name": name, "heads": "soft", "direction": "probe", "every": 5, "rows": "both", "alpha": 5.0}
    r.update({"monitor": True, "tau": "paper", "monitor_heads": 16})
    for kv in filter(None, rest.split(",")):
        k, v = kv.split("=")
        if k in ("every", "monitor_heads"):
            r[k] = int(v)
        elif k == "alpha":
            r[k] = float(v)
        elif k == "monitor":
            r[k] = v not in ("0", "false", "off")
        elif k == "heads":
            r[k] = v if v == "soft" else int(v)
        else:
            r[k] = v
    return r


DEFAULT_RECIPES = (
    "none",
    "paper:heads=soft,direction=probe,every=5,rows=both,alpha=5,monitor=1,tau=paper",
    "iti:heads=16,direction=mass_mean,every=1,rows=both,alpha=5,monitor=0",
)


def prompt_audio(args, model, trait, n) -> np.ndarray:
    segs = smitin.data.stem_segments(
        args.judge_data, trait, sample_rate=model.sample_rate, seconds=args.prompt_seconds
    )
    lab, grp = segs.labels(), np.array(segs.groups())
    rng = np.random.default_rng(5)
    idx, count = [], {}
    for i in rng.permutation(np.flatnonzero(lab == 0)):
        if count.get(grp[i], 0) < 2:
            idx.append(int(i))
            count[grp[i]] = count.get(grp[i], 0) + 1
        if len(idx) >= n:
            break
    return segs.load(idx)


def stage_e2e(args, model) -> dict:
    judge = load_judge(args, model)
    jv = json.loads((args.out / "calib.json").read_text()) if (args.out / "calib.json").exists() else {}
    res_path = args.out / f"{args.e2e_name}.json"
    res = json.loads(res_path.read_text()) if res_path.exists() else {}
    sr = model.sample_rate
    specs = (["none"] if args.no_default_recipes else list(DEFAULT_RECIPES)) + list(args.recipe)
    for trait in args.traits:
        prompts = prompt_audio(args, model, trait, args.n_prompts)
        pn = prompts.shape[1]
        res.setdefault(trait, {})
        for spec in specs:
            rec = parse_recipe(spec)
            key = spec
            if key in res[trait]:
                continue
            steer = []
            if rec["name"] != "none":
                ps = load_probes(args, trait, rec["direction"])
                tau = None
                if rec["tau"] == "cal":
                    tau = jv[trait]["calibrated_tau"]
                elif rec["tau"] not in ("paper", None):
                    tau = float(rec["tau"])
                kwargs = {
                    "alpha": rec["alpha"],
                    "heads": rec["heads"],
                    "monitor": rec["monitor"],
                    "threshold": tau,
                    "monitor_heads": rec["monitor_heads"],
                }
                steer = [make_steer(ps, rec["direction"], **kwargs)]
            t = time.time()
            out = smitin.continue_audio(
                model,
                list(prompts),
                sr,
                steer=steer,
                duration=args.seconds,
                seed=0,
                every=rec["every"],
                rows=rec["rows"],
                progress=False,
            )
            cont = out.audio[:, pn:]
            present, p = judge.present(cont, trait)
            tr = out.trace
            row = {
                "recipe": rec,
                "present": present.astype(int).tolist(),
                "p": [round(float(x), 4) for x in p],
                "onset_regularity": onset_regularity(cont, sr).round(4).tolist(),
                "register_activity": register_activity(cont, sr, trait).round(4).tolist(),
                "share_applied": tr.share_applied().get(trait, 0.0) if steer else 0.0,
                "share_scheduled_applied": (
                    float(tr.applied[tr.edited].float().mean()) if steer and tr.edited.any() else 0.0
                ),
                "nll": _nll(model, out.codes, pn // 320),
                "seconds": time.time() - t,
            }
            res[trait][key] = row
            dump(res_path, res)
            log(
                f"e2e {trait} {rec['name']}: presence {present.mean():.2f} p {p.mean():.3f} ({row['seconds']:.0f}s)"
            )
    return res


def _nll(model, codes, start_frame):
    """Token NLL under the unsteered model (smitin's own metric; its module moved in a refactor)."""
    import importlib

    for mod in ("smitin.experiment.metrics", "smitin.experiment", "smitin.judges"):
        try:
            token_nll = importlib.import_module(mod).token_nll
            break
        except (ImportError, AttributeError):
            continue
    return token_nll(model, codes, start_frame=start_frame).round(4).tolist()


# ----------------------------------------------------------------------------- report
def summarise(args) -> str:
    out = args.out
    L = ["# diagnose.py summary", ""]
    if (out / "judge.json").exists():
        j = json.loads((out / "judge.json").read_text())
        L += ["## Independent judge (held-out tracks, codec reconstructions)", ""]
        L += [
            "| trait | CNN AUC | LR AUC | threshold | bal. acc | held-out pos/neg |",
            "|---|---|---|---|---|---|",
        ]
        for t in TRAITS:
            if t in j:
                r = j[t]
                L.append(
                    f"| {t} | {r['cnn_auc_heldout']:.3f} | {r['lr_auc_heldout']:.3f} | {r['threshold']:.3f} | "
                    f"{r['bal_acc_at_threshold']:.3f} | {r['heldout_pos']}/{r['heldout_neg']} |"
                )
        L.append("")
    if (out / "judgeval.json").exists():
        j = json.loads((out / "judgeval.json").read_text())
        L += ["## Judge and monitor on unsteered generations (text names the trait vs 'without')", ""]
        L += [
            "| trait | judge AUC | presence named / without | probe-C AUC | C named / without | paper tau | "
            "calibrated tau | steps C>=paper tau (without) | steps C>=cal tau (without) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for t, r in j.items():
            L.append(
                f"| {t} | {r['judge_auc_text_named_vs_without']:.3f} | {r['judge_presence_named']:.2f} / "
                f"{r['judge_presence_without']:.2f} | {r['probe_C_auc_named_vs_without']:.3f} | "
                f"{r['C_mean_named']:.3f} / {r['C_mean_without']:.3f} | {r['paper_tau']:.3f} | "
                f"{r['calibrated_tau']:.3f} | {r['share_steps_C_above_paper_tau_without']:.2f} | "
                f"{r['share_steps_C_above_calibrated_tau_without']:.2f} |"
            )
        L.append("")
    if (out / "calib.json").exists():
        j = json.loads((out / "calib.json").read_text())
        L += ["## Monitor threshold on unsteered continuations (labels: independent judge)", ""]
        L += [
            "| trait | judge presence: prompt with / without | C AUC vs judge | C AUC vs prompt | paper tau | "
            "calibrated tau | C>=tau steps, trait-free prompts: paper / calibrated | same, prompts with trait |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for t, r in j.items():
            L.append(
                f"| {t} | {r['judge_presence_with_prompt']:.2f} / {r['judge_presence_without_prompt']:.2f} | "
                f"{r['C_auc_vs_judge']:.3f} | {r['C_auc_vs_prompt_label']:.3f} | {r['paper_tau']:.3f} | "
                f"{r['calibrated_tau']:.3f} | {r['steps_C_above_paper_tau_prompt_without']:.2f} / "
                f"{r['steps_C_above_calibrated_tau_prompt_without']:.2f} | "
                f"{r['steps_C_above_paper_tau_prompt_with']:.2f} / {r['steps_C_above_calibrated_tau_prompt_with']:.2f} |"
            )
        L.append("")
    if (out / "proxies.json").exists():
        j = json.loads((out / "proxies.json").read_text())
        L += ["## Proxies on real clips through the codec (with minus without; AUC)", ""]
        L += ["| trait | onset regularity d / AUC | register activity d / AUC |", "|---|---|---|"]
        for t, r in j.items():
            L.append(
                f"| {t} | {r['onset_regularity_with_minus_without']:+.3f} / {r['onset_regularity_auc']:.3f} | "
                f"{r['register_activity_with_minus_without']:+.3f} / {r['register_activity_auc']:.3f} |"
            )
        L.append("")
    if (out / "codes.json").exists():
        j = json.loads((out / "codes.json").read_text())
        L += ["## Trait codes (fit on probe render; validated on the judge render)", ""]
        L += [
            "| trait | codes/codebook | AUC model log-odds | AUC E[ratio] | AUC code frequency |",
            "|---|---|---|---|---|",
        ]
        for t, r in j.items():
            L.append(
                f"| {t} | {r['trait_codes_per_codebook']} | {r['validation_auc_logodds_mass']:.3f} | "
                f"{r['validation_auc_expected_ratio']:.3f} | {r['frequency_auc_in_codes']:.3f} |"
            )
        L.append("")
    if (out / "causal.json").exists():
        j = json.loads((out / "causal.json").read_text())
        L += [
            "## Causal: heads ranked by probe accuracy vs by effect (single-head push, probe direction)",
            "",
        ]
        L += [
            "| trait | Spearman (probe dir) | Spearman (mass-mean dir) | top-16 overlap (chance 8) | top-8 overlap |"
            " max single-head d log-odds probe / mass-mean / grad |",
            "|---|---|---|---|---|---|",
        ]
        for t, r in j.items():
            rk = r["ranking"]
            mx = [max(e["d_logodds"] for e in r["single_head"][n]) for n in ("probe", "mass_mean", "grad")]
            L.append(
                f"| {t} | {rk['spearman_acc_vs_effect_probe']:.2f} | {rk['spearman_acc_vs_effect_mass_mean']:.2f} | "
                f"{rk['top16_overlap']} | {rk['top8_overlap']} | {mx[0]:.3f} / {mx[1]:.3f} / {mx[2]:.3f} |"
            )
        L += [
            "",
            "Per layer (all 8 heads of the layer, weight 1, alpha as run): d log-odds probe / mass-mean / grad",
            "",
        ]
        L += ["| trait | " + " | ".join(f"layer {i}" for i in range(4)) + " |", "|---|---|---|---|---|"]
        for t, r in j.items():
            cells = []
            for i in range(len(r["per_layer"]["probe"])):
                cells.append(
                    " / ".join(
                        f"{r['per_layer'][n][i]['d_logodds']:.2f}" for n in ("probe", "mass_mean", "grad")
                    )
                )
            L.append(f"| {t} | " + " | ".join(cells) + " |")
        L += ["", "Recipes (teacher-forced, all positions or every 5th; rows=cond = CFG-amplified edit):", ""]
        L += [
            "| trait | direction | heads | alpha | every | rows | d log-odds | KL (nats) | d/KL |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for t, r in j.items():
            for e in r["recipes"]:
                if e["alpha"] in (5.0, 10.0) and (e["rows"] == "both" or e["every"] == 1):
                    L.append(
                        f"| {t} | {e['direction']} | {e['heads']} | {e['alpha']:g} | {e['every']} | {e['rows']} | "
                        f"{e['d_logodds']:.3f} | {e['kl']:.3f} | {e['d_logodds'] / max(e['kl'], 1e-6):.2f} |"
                    )
        L += [
            "",
            "Effect at matched cost: d log-odds interpolated (log-log over alpha 2-20) at KL = 0.1 and 0.5 nats:",
            "",
        ]
        L += [
            "| trait | direction | heads | every | rows | d @ KL 0.1 | d @ KL 0.5 |",
            "|---|---|---|---|---|---|---|",
        ]
        for t, r in j.items():
            for key, (a, b) in matched_cost(r["recipes"]).items():
                L.append(f"| {t} | {' | '.join(str(k) for k in key)} | {a:.3f} | {b:.3f} |")
        L.append("")
    e2e_files = sorted(out.glob("e2e*.json"))
    if e2e_files:
        j: dict = {}
        for f in e2e_files:  # several e2e runs (--e2e-name) merge; "none" is the same run in each
            for t, rows in json.loads(f.read_text()).items():
                j.setdefault(t, {}).update(rows)
        L += ["## End-to-end paired continuation (independent CNN judge, calibrated threshold)", ""]
        L += [
            "| trait | recipe | presence | paired diff vs none [95% CI] | mean p | d p [95% CI] | sign p | "
            "share sched. applied | onset reg. (d) | register act. (d) | NLL shift |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for t, rows in j.items():
            if "none" not in rows:
                continue
            n0 = rows["none"]
            for r in rows.values():
                d, lo, hi = bootstrap_diff(n0["present"], r["present"])
                dp, plo, phi = bootstrap_diff(n0["p"], r["p"])
                L.append(
                    f"| {t} | {r['recipe']['name']} | {np.mean(r['present']):.2f} | {d:+.2f} [{lo:+.2f}, {hi:+.2f}] | "
                    f"{np.mean(r['p']):.3f} | {dp:+.3f} [{plo:+.3f}, {phi:+.3f}] | {sign_test(n0['p'], r['p']):.3g} | "
                    f"{r['share_scheduled_applied']:.2f} | "
                    f"{np.mean(r['onset_regularity']) - np.mean(n0['onset_regularity']):+.3f} | "
                    f"{np.mean(r['register_activity']) - np.mean(n0['register_activity']):+.3f} | "
                    f"{np.mean(r['nll']) - np.mean(n0['nll']):+.3f} |"
                )
        L += ["", "Recipes (name: spec):", ""]
        specs = {r["recipe"]["name"]: key for rows in j.values() for key, r in rows.items()}
        L += [f"- `{name}`: `{spec}`" for name, spec in specs.items()]
        L.append("")
    text = "\n".join(L)
    (out / "summary.md").write_text(text)
    return text


def matched_cost(recipes, levels=(0.1, 0.5)) -> dict:
    """(direction, heads, every, rows) -> d log-odds at the given KL levels (NaN outside the range)."""
    groups: dict = {}
    for e in recipes:
        groups.setdefault((e["direction"], e["heads"], e["every"], e["rows"]), []).append(e)
    out = {}
    for key, es in groups.items():
        es = sorted(es, key=lambda e: e["kl"])
        kl = np.log([max(e["kl"], 1e-9) for e in es])
        d = np.array([e["d_logodds"] for e in es])
        vals = []
        for lv in levels:
            x = math.log(lv)
            vals.append(float(np.interp(x, kl, d)) if kl[0] <= x <= kl[-1] else float("nan"))
        out[key] = tuple(vals)
    return out


STAGES = {
    "probes": stage_probes,
    "judge": stage_judge,
    "judgeval": stage_judgeval,
    "calib": stage_calib,
    "proxies": stage_proxies,
    "codes": stage_codes,
    "causal": stage_causal,
    "e2e": stage_e2e,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--probe-data", type=Path, required=True, help="stems the probes and trait codes train on")
    p.add_argument("--judge-data", type=Path, required=True, help="separate render: judge, prompts, contexts")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stages", default=",".join(STAGES), help="comma list of stages to run (in order)")
    p.add_argument("--summary-only", action="store_true", help="only rewrite summary.md from the JSON")
    p.add_argument("--redo", default="", help="comma list of stages to recompute even if done")
    p.add_argument("--traits", default=",".join(TRAITS))
    p.add_argument("--seconds", type=float, default=4.0, help="clip / continuation length")
    p.add_argument("--prompt-seconds", type=float, default=2.0)
    p.add_argument("--n-prompts", type=int, default=32)
    p.add_argument("--n-gen", type=int, default=16, help="generations per class in judgeval")
    p.add_argument("--n-ctx", type=int, default=16, help="teacher-forced contexts in causal")
    p.add_argument("--n-code-segments", type=int, default=200)
    p.add_argument("--causal-alpha", type=float, default=5.0)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--e2e-name", default="e2e", help="file name of the e2e results (parallel runs)")
    p.add_argument("--no-default-recipes", action="store_true", help="e2e: only none + --recipe specs")
    p.add_argument("--recipe", action="append", default=[], help="extra e2e recipe spec (see parse_recipe)")
    args = p.parse_args()
    args.traits = [t for t in args.traits.split(",") if t]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cache").mkdir(exist_ok=True)
    torch.set_num_threads(args.threads)
    if args.summary_only:
        print(summarise(args))
        return
    model = smitin.load()
    redo = set(filter(None, args.redo.split(",")))
    for name in filter(None, args.stages.split(",")):
        path = args.out / f"{name}.json"
        if name == "e2e":
            path = args.out / f"{args.e2e_name}.json"
        if path.exists() and name not in redo and name != "e2e":
            log(f"{name}: done ({path})")
            continue
        log(f"stage {name}")
        res = STAGES[name](args, model)
        dump(path, res)
    print(summarise(args))


if __name__ == "__main__":
    main()
