"""Training the experiment's two independent judges of a trait, calibrating them, checking them on noise.

Judge A (`ClassifierJudge`) and judge B (`CNNJudge`) train on the classifier tracks' clips, original
and through the model's codec, augmented with noise (`noise.augment`: noise is not the trait). Their
twins trained without the noise (smitin <= 0.3's judges) are trained beside them, so the experiment
can show what the augmentation changed. Every judge's threshold maximises Youden's J on the
evaluation tracks' with/without pairs passed through the codec (the domain generated audio lives
in), where accuracy and AUC are measured, and every judge's false positives on noisy trait-free
clips are recorded (`info["noise_check"]`). The four are cached by a key of the model's weights,
the data and this module's version.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .cnn import CNNJudge
from .judges import ClapJudge, ClassifierJudge, ProbeDetector
from .keep import flatness
from .metrics import auc
from .noise import NOISE_ONLY_SHARE, TRAIN_LEVELS, augment, false_positives, noisy_sets
from .split import TraitData
from .stats import accuracy_at, crossfit_accuracy, youden_threshold

JUDGE_VERSION = 3  # bump when the judges' training or calibration changes (cached judges are refitted)
JUDGE_NOISE = [list(TRAIN_LEVELS), NOISE_ONLY_SHARE]  # the judges' noise augmentation: part of the key
NOISE_CHECK_CLIPS = 64  # negatives of the evaluation tracks each judge's noise check runs on


def trained_judges(
    trait: str,
    td: TraitData,
    folder: Path,
    *,
    model_digest: str,
    resynth: Callable[[np.ndarray], np.ndarray],
    sr: int,
    seed: int,
    detector: ProbeDetector,
    clap: ClapJudge | None = None,
) -> tuple[ClassifierJudge, CNNJudge, ClassifierJudge, CNNJudge]:
    """A and B (noise-augmented), then A and B trained without noise, calibrated and noise-checked;
    read from `folder` when cached with the same key, else trained and saved there. The probe
    detector's (and CLAP's, if given) accuracy on the same evaluation clips goes to A's record."""
    key = {
        "weights": model_digest,
        "train": td.judge.fingerprint(),
        "eval": td.judge_eval.fingerprint(),
        "v": JUDGE_VERSION,
        "noise": JUDGE_NOISE,
    }
    names = (f"{trait}", f"{trait}-cnn", f"{trait}-clean", f"{trait}-cnn-clean")
    paths = [folder / f"{n}.safetensors" for n in names]
    if all(p.exists() for p in paths):
        clf, cnn = ClassifierJudge.load(paths[0]), CNNJudge.load(paths[1])
        clf0, cnn0 = ClassifierJudge.load(paths[2]), CNNJudge.load(paths[3])
        if all(j.info.get("key") == key for j in (clf, cnn, clf0, cnn0)):
            return clf, cnn, clf0, cnn0
    audio, labels = td.judge.load(range(len(td.judge))), td.judge.labels()
    both, both_labels = np.concatenate([audio, resynth(audio)]), np.concatenate([labels, labels])
    noisy, noisy_labels = augment(both, both_labels, seed=seed)
    clf = ClassifierJudge.train(trait, noisy, noisy_labels, sr, key=key, noise="augmented")
    cnn = CNNJudge.train(trait, noisy, noisy_labels, sr, seed=seed, key=key, noise="augmented")
    clf0 = ClassifierJudge.train(trait, both, both_labels, sr, key=key, noise="none")
    cnn0 = CNNJudge.train(trait, both, both_labels, sr, seed=seed, key=key, noise="none")
    ev, ev_labels = td.judge_eval.load(range(len(td.judge_eval))), td.judge_eval.labels()
    ev_rs = resynth(ev)
    tracks = [s.track for s in td.judge_eval.segments]
    negatives = ev_rs[ev_labels == 0]
    pick = np.random.default_rng(seed).permutation(len(negatives))[:NOISE_CHECK_CLIPS]
    check = noisy_sets(negatives[np.sort(pick)], seed=seed)
    four: tuple[ClassifierJudge | CNNJudge, ...] = (clf, cnn, clf0, cnn0)
    for j in four:
        p = j.proba(ev_rs, sr)
        j.threshold = youden_threshold(ev_labels, p)
        j.accuracy = {
            "original": accuracy_at(ev_labels, j.proba(ev, sr), j.threshold),
            "resynthesised": accuracy_at(ev_labels, p, j.threshold),
            "resynthesised_at_0.5": accuracy_at(ev_labels, p, 0.5),
            "resynthesised_crossfit": crossfit_accuracy(ev_labels, p, tracks),
            "auc_resynthesised": auc(ev_labels, p),
            "eval_clips": int(len(ev_labels)),
        }
        j.info["noise_check"] = false_positives(j.present, check, sr)
    clf.info["noise_flatness"] = {k: float(flatness(v, sr).mean()) for k, v in check.items()}
    det_p, det_s = detector.present(ev_rs, sr)
    clf.accuracy["probe_detector_resynthesised"] = float((det_p == ev_labels.astype(bool)).mean())
    clf.accuracy["probe_detector_auc"] = auc(ev_labels, det_s)
    if clap:
        clf.accuracy["clap_resynthesised"] = float(
            ((clap.proba(ev_rs, sr, trait) >= 0.5) == ev_labels.astype(bool)).mean()
        )
    for j, path in zip(four, paths, strict=True):
        j.save(path)
    return clf, cnn, clf0, cnn0
