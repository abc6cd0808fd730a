import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.linear_model import LogisticRegression

from smitin.backbone import HeadLayout
from smitin.holdout import split_by_group
from smitin.probes import ProbeFileError, ProbeSet, train


def synthetic(n_tracks=20, per_track=12, layers=2, heads=3, dim=8, seed=0):
    """z [N, L, H, D] where head (l, h) separates the classes with strength (l*H + h) / (L*H)."""
    rng = np.random.default_rng(seed)
    n = n_tracks * per_track
    y = rng.integers(0, 2, n)
    groups = np.repeat([f"t{i}" for i in range(n_tracks)], per_track)
    axis = rng.standard_normal((layers, heads, dim))
    strength = np.arange(layers * heads).reshape(layers, heads) / (layers * heads) * 2
    z = (
        rng.standard_normal((n, layers, heads, dim))
        + (2 * y - 1)[:, None, None, None] * strength[..., None] * axis
    )
    return torch.tensor(z, dtype=torch.float32), y, groups


def test_batched_probes_match_scikit_learn():
    z, y, groups = synthetic()
    probes = train(z, y, groups, C=1.0, seed=0)
    val = split_by_group(groups, 0.2, seed=0)
    for layer in range(2):
        for h in range(3):
            x = z[:, layer, h].numpy()
            ref = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(x[~val], y[~val])
            acc = ref.score(x[val], y[val])
            assert probes.accuracy[layer, h].item() == pytest.approx(acc, abs=1e-6)
            w_ref = ref.coef_[0] / np.linalg.norm(ref.coef_[0])
            assert float(np.dot(w_ref, probes.direction[layer, h].numpy())) > 0.9999
            assert probes.weight[layer, h].numpy() == pytest.approx(ref.coef_[0], abs=1e-3)
            assert probes.bias[layer, h].item() == pytest.approx(ref.intercept_[0], abs=1e-3)


def test_probe_outputs_are_consistent():
    z, y, groups = synthetic()
    p = train(z, y, groups)
    assert p.accuracy[1, 2] > p.accuracy[0, 0]  # stronger separation -> better probe
    assert torch.allclose(p.direction.norm(dim=-1), torch.ones(2, 3))
    val = torch.from_numpy(split_by_group(groups, 0.2, 0))
    ztr = z[~val]
    proj = torch.einsum("nlhd,lhd->nlh", ztr, p.direction)
    assert torch.allclose(p.sigma, proj.std(0), atol=1e-5)
    assert torch.allclose(p.mean_pos, ztr[torch.from_numpy(y)[~val] == 1].mean(0), atol=1e-6)
    mm = train(z, y, groups, direction="mass_mean")
    diff = mm.mean_pos - mm.mean_neg
    assert torch.allclose(mm.direction, diff / diff.norm(dim=-1, keepdim=True), atol=1e-6)
    assert p.accuracy.flatten()[p.top(1)].item() == p.accuracy.max().item()
    info = p.meta["training"]
    assert info["train"]["tracks"] + info["validation"]["tracks"] == 20


def test_train_refuses_one_class_data():
    z, y, groups = synthetic()
    with pytest.raises(ValueError, match="both classes"):
        train(z, np.zeros_like(y), groups)


def test_save_load_roundtrip(tmp_path):
    z, y, groups = synthetic()
    p = train(z, y, groups, meta={"trait": "drums", "model": "m"})
    path = p.save(tmp_path / "drums.safetensors")
    q = ProbeSet.load(path)
    for name in ("weight", "bias", "accuracy", "direction", "sigma", "mean_pos", "mean_neg"):
        assert torch.equal(getattr(p, name), getattr(q, name))
    assert q.trait == "drums" and q.meta["layout"] == "L2xH3xD8" and q.meta["smitin"]
    assert q.threshold() == pytest.approx(p.threshold())


def test_a_probe_set_with_nan_is_not_written(tmp_path):
    z, y, groups = synthetic()
    p = train(z, y, groups, meta={"trait": "drums", "model": "m"})
    p.weight[0, 0, 0] = float("nan")
    with pytest.raises(ProbeFileError, match="weight hold NaN or infinite"):
        p.save(tmp_path / "drums.safetensors")
    assert list(tmp_path.iterdir()) == []


class FakeBackbone:
    name = "other-model"
    layout = HeadLayout(4, 3, 8)

    def weights_digest(self):
        return "x"


def test_load_refuses_another_layout(tmp_path):
    z, y, groups = synthetic()
    path = train(z, y, groups, meta={"model": "m"}).save(tmp_path / "p.safetensors")
    with pytest.raises(
        ProbeFileError, match=r"L2xH3xD8.*other-model has heads L4xH3xD8.*smitin probes train"
    ):
        ProbeSet.load(path, FakeBackbone())


def test_load_damaged_or_foreign_files(tmp_path):
    z, y, groups = synthetic()
    path = train(z, y, groups).save(tmp_path / "p.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ProbeFileError, match="cut.safetensors: not a readable probe file"):
        ProbeSet.load(tmp_path / "cut.safetensors")
    (tmp_path / "text.safetensors").write_text("hello")
    with pytest.raises(ProbeFileError, match="text.safetensors"):
        ProbeSet.load(tmp_path / "text.safetensors")
    save_file({"weight": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(ProbeFileError, match="not a smitin probe file"):
        ProbeSet.load(tmp_path / "foreign.safetensors")
    with pytest.raises(ProbeFileError, match="no such probe file"):
        ProbeSet.load(tmp_path / "missing.safetensors")


def test_fit_cached_reuses_a_file_made_from_the_same_data(tiny, stems, tmp_path, monkeypatch):
    from smitin import data, probes

    segs = data.stem_segments(stems, "drums", sample_rate=tiny.sample_rate, seconds=1.0)
    out = tmp_path / "drums.safetensors"
    first = probes.fit_cached(tiny, segs, out, progress=False)
    assert out.is_file() and out.with_suffix(".cache").is_dir()
    calls = []
    monkeypatch.setattr(probes, "fit", lambda *a, **k: calls.append(1) or first)
    again = probes.fit_cached(tiny, segs, out, progress=False)
    assert not calls and torch.equal(again.weight, first.weight)  # reused, not retrained
    probes.fit_cached(tiny, segs, out, reuse=False, progress=False)
    assert calls == [1]  # asked to retrain
    other = data.stem_segments(stems, "drums", sample_rate=tiny.sample_rate, seconds=0.5)
    probes.fit_cached(tiny, other, out, progress=False)
    assert calls == [1, 1]  # other data: retrained
    assert "denoised" in first.directions and first.meta["noise_response"]["segments"] > 0
    assert set(first.meta["noise_response"]["vs_trait"]) == {"mass_mean", "probe"}
    older = probes.ProbeSet(
        **{**first.__dict__, "directions": {k: v for k, v in first.directions.items() if k != "denoised"}}
    )
    older.save(out)
    probes.fit_cached(tiny, segs, out, progress=False)
    assert calls == [1, 1, 1]  # a file without the noise-blind direction: retrained


def test_both_directions_are_trained_saved_and_chosen_when_steering(tmp_path):
    z, y, groups = synthetic()
    p = train(z, y, groups, direction="mass_mean")
    assert p.default_direction == "mass_mean" and set(p.directions) == {"probe", "mass_mean"}
    unit, sigma = p.steering_vectors()
    assert torch.equal(unit, p.direction) and torch.equal(sigma, p.sigma)
    mm = p.mean_pos - p.mean_neg
    assert torch.allclose(unit, mm / mm.norm(dim=-1, keepdim=True), atol=1e-5)
    probe_unit, _ = p.steering_vectors("probe")
    assert torch.allclose(probe_unit, p.weight / p.weight.norm(dim=-1, keepdim=True), atol=1e-5)
    back = ProbeSet.load(p.save(tmp_path / "p.safetensors"))
    for d in ("probe", "mass_mean"):
        assert all(
            torch.equal(a, b) for a, b in zip(back.steering_vectors(d), p.steering_vectors(d), strict=True)
        )
    with pytest.raises(ValueError, match="direction must be one of"):
        p.steering_vectors("pca")


def test_the_denoised_direction_is_the_class_mean_blind_to_noise(tmp_path):
    z, y, groups = synthetic()
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(2, 3, 8, generator=g)
    p = train(z, y, groups, noise=noise)
    assert set(p.directions) == {"probe", "mass_mean", "denoised"} and p.default_direction == "probe"
    unit, sigma = p.steering_vectors("denoised")
    n = noise / noise.norm(dim=-1, keepdim=True)
    assert torch.allclose((unit * n).sum(-1), torch.zeros(2, 3), atol=1e-5)  # nothing along the noise
    assert torch.allclose(unit.norm(dim=-1), torch.ones(2, 3), atol=1e-5)
    mm = p.steering_vectors("mass_mean")[0]
    assert ((unit * mm).sum(-1) > 0).all()  # still the trait's way
    val = torch.from_numpy(split_by_group(groups, 0.2, 0))
    assert torch.allclose(sigma, torch.einsum("nlhd,lhd->nlh", z[~val], unit).std(0), atol=1e-5)
    back = ProbeSet.load(p.save(tmp_path / "p.safetensors"))
    assert torch.equal(back.steering_vectors("denoised")[0], unit)
    assert train(z, y, groups, noise=noise, direction="denoised").default_direction == "denoised"
    with pytest.raises(ValueError, match="needs the heads' noise response"):
        train(z, y, groups, direction="denoised")


def test_a_file_without_the_denoised_direction_steers_along_the_class_mean_and_says_so():
    z, y, groups = synthetic()
    p = train(z, y, groups)  # no noise response: an older smitin's file
    assert set(p.directions) == {"probe", "mass_mean"}
    with pytest.warns(UserWarning, match="no noise-blind direction"):
        unit, _ = p.steering_vectors("denoised")
    assert unit is p.directions["mass_mean"][0]


def test_auto_pushes_along_the_class_mean_unless_noise_moves_it(tmp_path):
    z, y, groups = synthetic()
    p = train(z, y, groups)
    mm, probe = p.directions["mass_mean"][0], p.directions["probe"][0]
    assert p.resolve("auto") == "probe" and p.steering_vectors("auto")[0] is probe  # no noise reading
    trait = p.mean_pos - p.mean_neg
    loud = p.noise_vs_trait(2 * trait)  # noise moves the heads twice as far as the trait, its way
    assert loud["mass_mean"] == pytest.approx(2.0, rel=1e-3)
    p.meta["noise_response"] = {"level_x_rms": 0.3, "vs_trait": loud}
    assert (
        p.resolve("auto") == "probe" and "so the default (auto) pushes along the probe weights" in p.summary()
    )
    quiet = p.noise_vs_trait(torch.zeros_like(trait))
    assert quiet["mass_mean"] == 0.0
    p.meta["noise_response"]["vs_trait"] = quiet
    assert p.resolve("auto") == "mass_mean" and p.steering_vectors("auto")[0] is mm
    assert "so the default (auto) pushes along it" in p.summary()
    back = ProbeSet.load(p.save(tmp_path / "p.safetensors"))
    assert back.resolve("auto") == "mass_mean" and back.resolve(None) == "probe"


def test_an_old_file_steers_only_along_its_own_direction():
    from pathlib import Path

    old = ProbeSet.load(Path(__file__).parent / "fixtures" / "drums-v0.1.0-tiny.safetensors")
    assert old.directions == {} and old.steering_vectors("probe")[0] is old.direction
    with pytest.raises(
        ProbeFileError, match="retrain them with `smitin probes train` to steer along 'mass_mean'"
    ):
        old.steering_vectors("mass_mean")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_probe_file_follows_the_umask_and_is_replaced_atomically(umask, tmp_path, monkeypatch):
    import os

    from smitin import probes as module

    z, y, groups = synthetic()
    p = train(z, y, groups, meta={"trait": "drums"})
    old = os.umask(umask)
    try:
        path = p.save(tmp_path / "drums.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not safetensors' 0600
    before = path.read_bytes()

    def cut(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(module.os, "replace", cut)
    with pytest.raises(OSError, match="disk full"):
        train(z, y, groups, meta={"trait": "bass"}).save(path)
    assert path.read_bytes() == before and [f.name for f in tmp_path.iterdir()] == ["drums.safetensors"]


def test_summary_warns_about_probes_too_weak_to_monitor():
    z, y, groups = synthetic(layers=3, heads=4)
    strong = train(z, y, groups, meta={"trait": "drums"})
    assert strong.threshold() > 0.5 and "weak probes" not in strong.summary()
    noise = torch.randn_like(z)  # no head separates the classes: accuracies around 0.5
    weak = train(noise, y, groups, meta={"trait": "bass"})
    assert weak.threshold() <= 0.5
    assert "weak probes" in weak.summary() and "--threshold paper" in weak.summary()
    assert "monitor threshold: positive" in weak.summary()  # both taus are shown, the default first


# -- property-based: any file is probes or a ProbeFileError, and loaded probes steer finitely ---------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from helpers import bounded_examples  # noqa: E402

FAST = bounded_examples(200)
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, 1.0, -1.0, 1e30, 1e38, 3.4e38, 1e-45]),
)
SHAPES = st.sampled_from([(2, 3, 8), (2, 3), (6, 8), (2, 3, 7), (0, 3, 8), (1,), ()])
DTYPES = st.sampled_from([torch.float32] * 4 + [torch.float16, torch.float64, torch.int64, torch.bool])
META = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=10), c, max_size=3)),
    max_leaves=8,
)


@st.composite
def probe_files(draw) -> tuple[dict, bytes | None]:
    """A good file's tensors and metadata with some of them replaced by hostile ones."""
    from helpers import make_probes

    p = make_probes(HeadLayout(2, 3, 8))
    names = ("weight", "bias", "accuracy", "direction", "sigma", "mean_pos", "mean_neg")
    tensors = {n: getattr(p, n).float().clone() for n in names}
    for d, (u, s) in p.directions.items():
        tensors[f"direction_{d}"], tensors[f"sigma_{d}"] = u.clone(), s.clone()
    for name in draw(st.lists(st.sampled_from(sorted(tensors)), max_size=3, unique=True)):
        shape = tuple(tensors[name].shape) if draw(st.integers(0, 3)) else draw(SHAPES)
        fill = draw(VALUES)
        dtype = draw(DTYPES)
        if dtype == torch.bool:
            tensors[name] = torch.zeros(shape, dtype=dtype)
        elif draw(st.booleans()) and shape == tuple(tensors[name].shape):  # scaled: still plausible-looking
            tensors[name] = (tensors[name] * fill).to(dtype)
        else:
            tensors[name] = torch.full(shape, fill).to(dtype)
    if not draw(st.integers(0, 5)):
        del tensors[draw(st.sampled_from(sorted(tensors)))]
    meta = {"trait": "drums", "model": "test", "training": {"direction": "probe"}}
    if not draw(st.integers(0, 4)):
        meta = draw(
            st.one_of(
                META,
                st.builds(
                    lambda k, v: {**meta, k: v},
                    st.sampled_from(sorted(meta) + ["layout", "accuracy", "sample_rate"]),
                    META,
                ),
            )
        )
    cut = draw(st.integers(min_value=0, max_value=4000)) if not draw(st.integers(0, 5)) else None
    return {"tensors": tensors, "meta": meta}, cut


@FAST
@given(case=probe_files())
def test_any_probe_file_is_probes_or_a_probe_file_error(tmp_path, case):
    import json

    from safetensors.torch import save

    spec, cut = case
    path = tmp_path / "p.safetensors"
    blob = save(spec["tensors"], metadata={"smitin": json.dumps(spec["meta"], allow_nan=True)})
    path.write_bytes(blob if cut is None else blob[:cut])
    try:
        probes = ProbeSet.load(path)
    except ProbeFileError as err:
        assert "p.safetensors" in str(err)
        return
    from smitin.recipes import MAX_ALPHA

    for name in ("probe", "mass_mean"):  # what loads can steer: a finite push at the largest strength
        try:
            unit, sigma = probes.steering_vectors(name)
        except ProbeFileError:
            continue
        push = unit.double().norm(dim=-1) * sigma.double() * MAX_ALPHA
        assert torch.isfinite(push).all() and float(push.max()) <= 1e4
    assert probes.summary()  # and can be shown
