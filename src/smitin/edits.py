"""How big an edit is: a fixed shift, or a bounded push to the trait's class-mean reading.

"shift" (the paper's and ITI's) adds alpha * w * sigma * theta to a pushed head whatever it
already reads, so a head already past the trait's typical reading is pushed further still, off
the activations the model was trained on. "bounded" moves each pushed head's projection on theta
towards the projection of the trait's class mean (of the positive class when adding, of the
negative class when removing) by at most that same shift, and never past it: a head that already
reads the class mean, or more, is not edited at all.

Both are one layer's worth of batched tensor math (all traits and heads at once, no loop over
heads, nothing read back to the host), called by `smitin.steering` on every edited layer call.
"""

from __future__ import annotations

import torch

from .options import EDITS

__all__ = ["EDITS", "bounded_amount", "bounded_edit"]


def bounded_amount(
    proj: torch.Tensor, target: torch.Tensor, cap: torch.Tensor, sign: torch.Tensor
) -> torch.Tensor:
    """Signed move along each head's direction: from `proj` towards `target`, by at most `cap`
    (>= 0), only in the push's direction `sign` (+1 towards present, -1 towards absent).

    Zero where the head is already at or past the target; shapes broadcast.
    """
    room = ((target - proj) * sign).clamp_min(0)
    return torch.minimum(room, cap) * sign


def bounded_edit(
    x: torch.Tensor,
    unit: torch.Tensor,
    target_pos: torch.Tensor,
    target_neg: torch.Tensor,
    size: torch.Tensor,
    gain: torch.Tensor,
    sign: torch.Tensor,
) -> torch.Tensor:
    """The bounded edit of one layer's newest position, every trait and head at once.

    x [R, H*D]: the heads' outputs before the edit; unit [T, H, D]: unit directions; target_pos,
    target_neg [T, H]: the class means' projections on them; size [T, H]: the cap, |alpha| * w *
    sigma (0 for heads not pushed); gain [R, T] >= 0: this step's gain per row; sign [T]: +1 push
    towards present, -1 towards absent. Returns the [R, H*D] edit to add (the traits' edits add up).
    """
    rows, heads, dim = x.shape[0], unit.shape[1], unit.shape[2]
    proj = torch.einsum("rhd,thd->rth", x.reshape(rows, heads, dim).to(unit.dtype), unit)
    target = torch.where(sign[:, None] > 0, target_pos, target_neg)  # [T, H]
    amount = bounded_amount(proj, target, gain[..., None] * size, sign[:, None])  # [R, T, H]
    return torch.einsum("rth,thd->rhd", amount, unit).reshape(rows, heads * dim)
