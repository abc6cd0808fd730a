import torch

from smitin.diagnose.sweep import LayerSteer


def test_layer_steer_pushes_the_best_heads_of_its_layers_only(tiny, probes_for):
    probes = probes_for(tiny.layout)  # 2 layers x 4 heads
    w = LayerSteer(probes, heads=3, layers=(1,)).head_weights()
    assert w[0].sum() == 0 and w[1].sum() == 3
    best = torch.topk(probes.accuracy[1], 3).indices
    assert set(w[1].nonzero().flatten().tolist()) == set(best.tolist())
    assert LayerSteer(probes, heads=99, layers=(0,)).head_weights().sum() == 4  # capped at the layer's heads
    soft = LayerSteer(probes, heads="soft", layers=(0,)).head_weights()
    assert soft[1].sum() == 0 and torch.equal(soft[0], LayerSteer(probes, heads="soft").head_weights()[0])
    assert torch.equal(
        LayerSteer(probes, heads=3).head_weights(), LayerSteer(probes, heads=3, layers=()).head_weights()
    )
    # the monitor still watches the trait's best heads, wherever they are
    assert torch.equal(LayerSteer(probes, layers=(1,)).watched(), probes.top(16))


def test_frontier_has_one_point_per_variant_with_its_keeping():
    from smitin.diagnose.sweep import frontier

    def row(presence: float, kept: dict[str, tuple[int, float]]) -> dict:
        d = {"diff": 0.0, "low": 0.0, "high": 0.0}
        return {
            "present": {**d, "diff": presence},
            "continuity": {**d, "diff": -0.1},
            "flatness": {**d, "diff": 0.05},
            "kept": {t: {"present_unsteered": n, "retention": r} for t, (n, r) in kept.items()},
        }

    res = {"rows": {"a": row(0.5, {"bass": (4, 0.5), "piano": (2, 1.0)}), "b": row(0.25, {"bass": (0, 0.0)})}}
    points = frontier(res, "drums")
    assert [p["method"] for p in points] == ["a", "b"]
    assert points[0]["presence"] == 50 and points[0]["retention"] == 0.75  # mean over the traits it had
    assert points[0]["continuity"] == -0.1 and points[0]["flatness"] == 0.05
    assert points[1]["retention"] != points[1]["retention"]  # NaN: no watched trait to keep
