from helpers import make_probes
from smitin import defaults


def test_cache_and_default_probe_names(tiny, monkeypatch, tmp_path):
    monkeypatch.setenv("SMITIN_CACHE", str(tmp_path / "c"))
    assert defaults.cache_dir() == tmp_path / "c"
    path = defaults.default_probe_path(tiny)
    assert path.parent == tmp_path / "c" / "probes" and tiny.layout.fingerprint() in path.name
    path.parent.mkdir(parents=True)
    make_probes(tiny.layout).save(path)
    assert defaults.train_default_probes(tiny, log=lambda _m: None) == path  # cached: nothing rendered
