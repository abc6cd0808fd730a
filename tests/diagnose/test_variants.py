import pytest

from smitin.diagnose.variants import Variant, parse_variant, push_variants, sampling_variants


def test_a_variant_from_text():
    v = parse_variant(
        "strong: alpha=10, heads=32, edit=bounded, layers=0-1, every=5, temperature=0.8, monitor=0"
    )
    assert v.name == "strong" and v.layers == (0, 1)
    assert v.steer == {"alpha": 10.0, "heads": 32, "edit": "bounded", "monitor": False}
    assert v.options == {"every": 5} and v.sampling == {"temperature": 0.8}
    assert v.unsteered() == Variant("none (temperature 0.8)", None, (), {}, {"temperature": 0.8})
    assert parse_variant("soft:heads=soft,threshold=paper").steer == {"heads": "soft", "threshold": "paper"}
    assert parse_variant("held:keep=1").hold and not parse_variant("free:keep=0").hold


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("alpha=5", "write NAME:KEY=VALUE"),
        ("x:alpha=500", "strength must be a finite number"),
        ("x:loud=1", "unknown key 'loud'"),
        ("x:edit=clamp", "edit must be one of shift, bounded"),
        ("x:layers=3-1", "0 <= L1 <= L2"),
        ("x:every=0", "every must be positive"),
        ("x:alpha", "is not KEY=VALUE"),
        ("x:keep=yes", "keep must be 0 or 1"),
    ],
)
def test_bad_variants_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_variant(spec)


def test_the_built_in_variants_cover_strength_heads_layers_and_edits():
    names = [v.name for v in push_variants(5.0, layers=48)]
    assert "alpha 5" in names and "alpha 20" in names and "bounded alpha 10" in names and "heads 32" in names
    layers = [v for v in push_variants(5.0, layers=48) if v.layers]
    assert [v.layers[0] for v in layers] == [0, 12, 24, 36] and sum(len(v.layers) for v in layers) == 48
    assert [v.name for v in push_variants(5.0, layers=2) if v.layers] == ["layer 0", "layer 1"]
    held = [v.name for v in push_variants(5.0, layers=4, hold=True) if v.hold]
    assert held == ["alpha 5, keep others", "alpha 10, keep others", "bounded alpha 5, keep others"]
    assert not any(v.hold for v in push_variants(5.0, layers=4))
    assert {v.unsteered().name for v in sampling_variants()} >= {"none (temperature 0.7)", "none (top_k 50)"}
