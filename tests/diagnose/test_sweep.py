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
