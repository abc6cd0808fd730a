import numpy as np
import pytest

from smitin.diagnose.directions import versions


def test_the_control_versions_match_what_they_say():
    rng = np.random.default_rng(0)
    neg = 0.1 * rng.standard_normal((3, 4000)).astype(np.float32)
    stem = 0.05 * rng.standard_normal((3, 4000)).astype(np.float32)
    pos = neg + stem
    v = versions(pos, neg)

    def rms(x):
        return np.sqrt((x**2).mean(-1))

    assert np.array_equal(v["with"], pos)
    assert np.allclose(rms(v["with, loudness matched"]), rms(neg), rtol=1e-4)
    for kind in ("white", "pink"):
        added = v[f"without + {kind} noise"] - neg
        assert np.allclose(rms(added), rms(stem), rtol=1e-3)  # noise as loud as the trait's stem
    assert rms(v["without + white noise"] - v["without + pink noise"]).min() > 0
    with pytest.raises(KeyError):
        v["without"]  # the base is the caller's


def test_the_denoised_direction_is_blind_to_the_heads_noise_response(tiny, probes_for, monkeypatch):
    import torch

    from smitin.diagnose import directions

    probes = probes_for(tiny.layout)
    L, H, D = probes.weight.shape
    rng = np.random.default_rng(1)
    shift = torch.from_numpy(rng.standard_normal((L, H, D)).astype(np.float32))
    readings = iter([shift[None] + 1.0, torch.ones(1, L, H, D)])  # with noise, then without

    class Ctx:
        settings = type("S", (), {"seed": 0})()

        def __init__(self):
            self.probes = probes
            self.derived_tensors = {}

        def pairs(self, source):
            return np.zeros((1, 100), np.float32), np.zeros((1, 100), np.float32)

    monkeypatch.setattr(directions, "head_readings", lambda ctx, audio: next(readings))
    ctx = Ctx()
    blind = directions.denoised(ctx)
    d, sigma = blind.steering_vectors("mass_mean")
    n = shift / shift.norm(dim=-1, keepdim=True)
    assert torch.allclose((d * n).sum(-1), torch.zeros(L, H), atol=1e-5)  # nothing along the noise shift
    assert torch.allclose(d.norm(dim=-1), torch.ones(L, H), atol=1e-5)
    assert torch.equal(sigma, probes.steering_vectors("mass_mean")[1])  # an alpha pushes as far
    u = probes.steering_vectors("mass_mean")[0]
    assert ((d * u).sum(-1) > 0).all()  # still the trait's way
    assert torch.equal(blind.steering_vectors("probe")[0], probes.steering_vectors("probe")[0])

    # the monitor made blind: probe weights lose the same component, nothing else changes
    monitor = directions.blind_monitor(ctx)
    assert torch.allclose((monitor.weight * n).sum(-1), torch.zeros(L, H), atol=1e-4)
    assert torch.equal(monitor.bias, probes.bias) and torch.equal(monitor.accuracy, probes.accuracy)
    assert torch.equal(monitor.steering_vectors("mass_mean")[0], u)  # pushes as the recipe does
