import pytest
import torch

from smitin.edits import bounded_amount, bounded_edit


def projections(x, unit):
    rows, (heads, dim) = x.shape[0], unit.shape[1:]
    return torch.einsum("rhd,thd->rth", x.reshape(rows, heads, dim), unit)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_bounded_edit_never_passes_the_class_mean_projection(sign):
    g = torch.Generator().manual_seed(0)
    rows, heads, dim = 64, 6, 5
    unit = torch.randn(1, heads, dim, generator=g)
    unit = unit / unit.norm(dim=-1, keepdim=True)
    pos, neg = torch.randn(1, heads, generator=g) + 1, torch.randn(1, heads, generator=g) - 1
    x = 3 * torch.randn(rows, heads * dim, generator=g)
    size = torch.rand(1, heads, generator=g) * 4
    gain = torch.rand(rows, 1, generator=g)
    before = projections(x, unit)
    after = projections(x + bounded_edit(x, unit, pos, neg, size, gain, torch.tensor([sign])), unit)
    target = pos if sign > 0 else neg
    moved = (after - before) * sign
    assert (moved >= -1e-5).all()  # only in the push's direction
    assert (moved <= gain[..., None] * size + 1e-5).all()  # by at most the cap
    start = (target - before) * sign  # how far the head was from the class mean
    assert ((after - target) * sign <= 1e-5)[start >= 0].all()  # never past it
    assert (moved.abs() < 1e-5)[start <= 0].all()  # a head at or past the mean is not edited
    assert (start > 0).any() and (start < 0).any()  # both cases were tested
    # with room to spare the head lands on the class mean
    big = bounded_edit(
        x, unit, pos, neg, torch.full_like(size, 1e3), torch.ones(rows, 1), torch.tensor([sign])
    )
    landed = projections(x + big, unit)
    assert torch.allclose(landed, torch.maximum(before * sign, target * sign) * sign, atol=1e-4)


def test_bounded_edits_stay_in_their_head_and_traits_add():
    g = torch.Generator().manual_seed(1)
    heads, dim = 3, 4
    unit = torch.zeros(2, heads, dim)
    unit[0, :, 0] = 1.0  # trait 0 reads coordinate 0 of each head, trait 1 coordinate 1
    unit[1, :, 1] = 1.0
    x = torch.randn(2, heads * dim, generator=g)
    pos = torch.full((2, heads), 10.0)
    size = torch.tensor([[1.0, 0.0, 1.0], [0.5, 0.5, 0.5]])  # head 1 of trait 0 is not pushed
    delta = bounded_edit(x, unit, pos, -pos, size, torch.ones(2, 2), torch.tensor([1.0, 1.0]))
    d = delta.reshape(2, heads, dim)
    assert torch.allclose(d[..., 0], size[0].expand(2, -1)) and torch.allclose(
        d[..., 1], size[1].expand(2, -1)
    )
    assert (d[..., 2:] == 0).all()
    # removal pushes towards the negative class mean
    away = bounded_edit(x, unit, pos, -pos, size, torch.ones(2, 2), torch.tensor([-1.0, 1.0]))
    assert (away.reshape(2, heads, dim)[..., 0] == -size[0]).all()


def test_bounded_amount_broadcasts():
    amount = bounded_amount(
        torch.tensor([0.0, 2.0, 5.0]), torch.tensor(3.0), torch.tensor(2.0), torch.tensor(1.0)
    )
    assert amount.tolist() == [2.0, 1.0, 0.0]
