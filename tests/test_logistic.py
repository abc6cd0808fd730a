import torch

from smitin.logistic import fit_logistic


def test_fit_logistic_is_regularised_on_separable_data():
    x = torch.tensor([[[-1.0], [1.0]]])  # perfectly separable: L2 keeps w finite
    w, b = fit_logistic(x, torch.tensor([0, 1]), C=1.0)
    assert torch.isfinite(w).all() and 0 < w.item() < 5
