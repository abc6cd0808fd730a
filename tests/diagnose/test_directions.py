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
