"""Many independent L2-regularised logistic regressions, solved together on one device.

Every head's probe is a logistic regression on 64-wide (head_dim) inputs, so all of them are
solved as one batched Newton iteration: Hessians are [heads, D+1, D+1], tiny, and one batched
Cholesky solve per step replaces a loop over heads. The objective matches scikit-learn's
`LogisticRegression(C=C)` (unpenalised intercept).
"""

from __future__ import annotations

import torch


@torch.no_grad()
def fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    C: float = 1.0,
    max_iter: int = 30,
    tol: float = 1e-3,
    chunk: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched L2 logistic regression: x [G, N, D], y [N] in {0, 1} -> weights [G, D], bias [G].

    Minimises 0.5 |w|^2 + C * sum(log-loss) per group g (scikit-learn's objective); the intercept
    is not penalised. Groups are solved `chunk` at a time, a block small enough to stay in cache:
    start from the LDA direction scaled by a guarded 2-parameter Newton fit, then take Newton steps
    whose gradient is exact float32 and whose Hessian X^T S X is a bfloat16 matmul (3x cheaper; an
    inexact Hessian changes only the convergence rate, never the fixed point, and a block falls back
    to float32 if it stops contracting). A factorised Hessian is reused while steps shrink 10x per
    iteration, and a step that raises a group's objective is halved. A block stops once every
    step is below `tol` relative to the weights: convergence is then (near) quadratic, so the
    weights are far closer than `tol` to the optimum.
    """
    g_all, n, d = x.shape
    y = y.to(device=x.device, dtype=torch.float32)
    weight = x.new_empty(g_all, d, dtype=torch.float32)
    bias = x.new_empty(g_all, dtype=torch.float32)
    for g0 in range(0, g_all, chunk):
        block = x[g0 : g0 + chunk].to(torch.float32).contiguous()
        w, b = _newton_block(block, y, 1.0 / C, max_iter, tol)
        weight[g0 : g0 + len(block)] = w
        bias[g0 : g0 + len(block)] = b
    return weight, bias


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (torch.nn.functional.softplus(logits) - y * logits).sum(-1)


def _lda_start(x: torch.Tensor, x16: torch.Tensor, y: torch.Tensor, reg: float) -> tuple:
    """LDA direction Sigma^-1 (mu1 - mu0), rescaled (with the intercept) to minimise the objective."""
    g, n, d = x.shape
    n1 = y.sum()
    n0 = n - n1
    gram = torch.bmm(x16.transpose(1, 2), x16).float()  # an approximate X^T X is enough here
    s1 = torch.bmm(y.expand(g, 1, n), x)[:, 0]
    mu1, mu0 = s1 / n1, (x.sum(1) - s1) / n0
    cov = (gram - n1 * mu1[:, :, None] * mu1[:, None, :] - n0 * mu0[:, :, None] * mu0[:, None, :]) / n
    diag = cov.diagonal(dim1=1, dim2=2)
    diag.add_(reg / n + 1e-4 * diag.mean(1, keepdim=True).clamp_min(1e-12))
    direction, info = torch.linalg.solve_ex(cov, (mu1 - mu0)[..., None])
    direction = torch.nan_to_num(torch.where(info[:, None, None] == 0, direction, 0)[..., 0], 0.0, 0.0, 0.0)
    u = torch.bmm(direction[:, None, :], x.transpose(1, 2))[:, 0]  # [g, N]
    norm2 = (direction * direction).sum(1)

    def objective(t, c):
        return _loss(t[:, None] * u + c[:, None], y) + 0.5 * reg * norm2 * t * t

    t, c = torch.zeros(g, device=x.device), torch.zeros(g, device=x.device)
    f = objective(t, c)
    for _ in range(10):
        p = torch.sigmoid(t[:, None] * u + c[:, None])
        r, s = p - y, p * (1 - p)
        su = s * u
        gt, gc = (r * u).sum(1) + reg * norm2 * t, r.sum(1)
        htt, htc, hcc = (su * u).sum(1) + reg * norm2 + 1e-12, su.sum(1), s.sum(1) + 1e-12
        det = htt * hcc - htc * htc
        dt, dc = (hcc * gt - htc * gc) / det, (htt * gc - htc * gt) / det
        for _halve in range(20):  # backtrack: the step must not raise the objective
            f_new = objective(t - dt, c - dc)
            worse = ~(f_new <= f)
            if not worse.any():
                break
            dt, dc = torch.where(worse, dt / 2, dt), torch.where(worse, dc / 2, dc)
        keep = f_new <= f
        t, c, f = torch.where(keep, t - dt, t), torch.where(keep, c - dc, c), torch.minimum(f_new, f)
        if bool((dt.abs() <= 1e-2 * (1 + t.abs())).all()):  # a start, not the answer
            break
    return direction * t[:, None], c


def _newton_block(x: torch.Tensor, y: torch.Tensor, reg: float, max_iter: int, tol: float):
    """Solve one cache-sized block of groups: x [g, N, D] float32 contiguous."""
    g, n, d = x.shape
    x16 = x.to(torch.bfloat16)
    x_t = x.transpose(1, 2)  # [g, D, N] view: row-vector x matrix products stay fast
    w, b = _lda_start(x, x16, y, reg)
    scaled16 = torch.empty_like(x16)
    hess = x.new_empty(g, d + 1, d + 1)
    ridge = torch.full((d + 1,), reg, dtype=x.dtype, device=x.device)
    ridge[d] = 1e-8  # intercept: (almost) unpenalised, keeps the Hessian positive definite
    low_precision, factor, previous, refresh = True, None, None, True
    f_old = w_old = b_old = None
    for _ in range(max_iter):
        logits = torch.bmm(w[:, None, :], x_t)[:, 0] + b[:, None]
        f = _loss(logits, y) + 0.5 * reg * (w * w).sum(1)
        if f_old is not None:
            worse = f > f_old + 1e-6 * f_old.abs()
            if worse.any():  # overshoot: halve those groups' last step and re-evaluate
                w = torch.where(worse[:, None], (w + w_old) / 2, w)
                b = torch.where(worse, (b + b_old) / 2, b)
                refresh = True
                continue
        p = torch.sigmoid(logits)
        r = p - y
        grad = torch.cat([torch.bmm(r[:, None, :], x)[:, 0] + reg * w, r.sum(1, keepdim=True)], 1)
        fresh = factor is None or refresh
        if fresh:
            s = p * (1 - p)
            if low_precision:
                torch.mul(x16, s.to(torch.bfloat16)[..., None], out=scaled16)
                top = torch.bmm(x16.transpose(1, 2), scaled16).float()
            else:
                top = torch.bmm(x_t, x * s[..., None])
            hess[:, :d, :d] = top
            edge = torch.bmm(s[:, None, :], x)[:, 0]
            hess[:, :d, d] = edge
            hess[:, d, :d] = edge
            hess[:, d, d] = s.sum(1)
            hess.diagonal(dim1=1, dim2=2).add_(ridge)
            factor, info = torch.linalg.cholesky_ex(hess)
            if bool(info.any()):  # not positive definite in bf16: redo this one in float32
                low_precision, factor = False, None
                continue
        assert factor is not None
        step = torch.cholesky_solve(grad[..., None], factor)[..., 0]
        f_old, w_old, b_old = f, w, b
        w, b = w - step[:, :d], b - step[:, d]
        size = float((step.abs().amax(1) / (1 + torch.maximum(w.abs().amax(1), b.abs()))).max())
        if size <= tol:
            break
        if previous is not None and fresh and low_precision and size > 0.5 * previous and size < 1e-2:
            low_precision = False  # bf16 curvature too coarse for these groups near the optimum
        refresh = previous is None or size > 0.1 * previous
        previous = size
    return w, b
