"""alpha-step in torch: the batched dual solver of :mod:`mkl_tp.solvers.batch_svm` on a device.

The same problem, method, stopping rule and intercept as
:func:`mkl_tp.solvers.batch_svm.svm_duals_batch` (see its module docstring): all
one-vs-rest duals at once by accelerated projected gradient with the exact projection onto
``{lo <= a <= hi, 1'a = 0}``, gradient restarts and active-set polishing, warm-started from
the previous alpha-step. Each iteration is one ``(N, N) x (N, n_tasks)`` product, which a
GPU does in a fraction of a millisecond; on a CPU libsvm is faster (docs/performance.rst).

torch is imported when this module is: it is only imported when ``solver="torch"`` is
selected, so the core does not depend on it (install the ``deep`` extra).
"""

import numpy as np

from .batch_svm import SVMDuals

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "solver='torch' needs PyTorch: pip install 'mkl_tp[deep]' (or pip install torch)"
    ) from exc

from .._torch import resolve_device  # noqa: E402  (after torch's friendly ImportError)

__all__ = ["svm_duals_torch"]

_BOUND_EPS = 1e-12


def _project(V, lo, hi, n_bisect=60):
    low = (V - hi).amin(dim=0)
    high = (V - lo).amax(dim=0)
    for _ in range(n_bisect):
        mid = 0.5 * (low + high)
        above = torch.clamp(V - mid, lo, hi).sum(dim=0) > 0
        low = torch.where(above, mid, low)
        high = torch.where(above, high, mid)
    nu = 0.5 * (low + high)
    shifted = V - nu
    free = (shifted > lo) & (shifted < hi)
    clipped = torch.clamp(shifted, lo, hi)
    n_free = free.sum(dim=0)
    correction = torch.where(n_free > 0, clipped.sum(dim=0) / n_free.clamp(min=1),
                             torch.zeros_like(nu))
    refined = torch.clamp(V - (nu + correction), lo, hi)
    better = refined.sum(dim=0).abs() <= clipped.sum(dim=0).abs()
    return torch.where(better, refined, clipped)


def _violation(gradient, A, lo, hi):
    span = torch.clamp(hi - lo, min=1.0)
    inf = torch.tensor(float("inf"), dtype=A.dtype, device=A.device)
    top = torch.where(A < hi - _BOUND_EPS * span, -gradient, -inf).amax(dim=0)
    bottom = torch.where(A > lo + _BOUND_EPS * span, -gradient, inf).amin(dim=0)
    return torch.clamp(top - bottom, min=0.0)


def _intercept(gradient, A, lo, hi):
    span = torch.clamp(hi - lo, min=1.0)
    inf = torch.tensor(float("inf"), dtype=A.dtype, device=A.device)
    at_lo = A <= lo + _BOUND_EPS * span
    at_hi = A >= hi - _BOUND_EPS * span
    free = ~at_lo & ~at_hi
    n_free = free.sum(dim=0)
    mean_free = torch.where(free, gradient, 0.0).sum(dim=0) / n_free.clamp(min=1)
    upper = torch.where(at_lo, gradient, inf).amin(dim=0)
    lower = torch.where(at_hi, gradient, -inf).amax(dim=0)
    middle = 0.5 * (torch.where(torch.isfinite(upper), upper, lower)
                    + torch.where(torch.isfinite(lower), lower, upper))
    return -torch.where(n_free > 0, mean_free, middle)


def _polish(K, A, Y, lo, hi, max_free):
    span = torch.clamp(hi - lo, min=1.0)
    free_mask = (A > lo + 1e-9 * span) & (A < hi - 1e-9 * span)
    target = A.clone()
    for c in range(A.shape[1]):
        free = torch.nonzero(free_mask[:, c]).flatten()
        if free.numel() == 0 or free.numel() > max_free:
            continue
        others = torch.nonzero(~free_mask[:, c]).flatten()
        size = free.numel()
        system = torch.zeros((size + 1, size + 1), dtype=torch.float64, device=A.device)
        system[:-1, :-1] = K[free][:, free].double()
        system[:-1, -1] = 1.0
        system[-1, :-1] = 1.0
        right = torch.empty(size + 1, dtype=torch.float64, device=A.device)
        right[:-1] = Y[free, c].double() - K[free][:, others].double() @ A[others, c].double()
        right[-1] = -A[others, c].double().sum()
        try:
            solution = torch.linalg.solve(system, right[:, None])
            if not bool(torch.isfinite(solution).all()):
                raise RuntimeError("singular free-set system")
        except RuntimeError:
            # Singular face (more free variables than the kernel's rank): the least-norm
            # solution still solves the consistent KKT system. CPU: CUDA's lstsq needs
            # full rank.
            solution = torch.linalg.lstsq(system.cpu(), right.cpu()[:, None],
                                          driver="gelsd").solution.to(A.device)
        target[free, c] = solution[:-1, 0].to(device=A.device, dtype=A.dtype)
    return _project(target, lo, hi)


def _objective(A, KA, Y):
    return 0.5 * (A * KA).sum(dim=0) - (Y * A).sum(dim=0)


def svm_duals_torch(kernel, Y, C, tol=1e-4, init=None, max_iter=5000, polish_every=25,
                    max_free=3000, device=None, dtype=None):
    """Solve all one-vs-rest SVM duals on one kernel at once, in torch.

    Parameters
    ----------
    kernel : ndarray of shape (N, N)
        Positive semi-definite training kernel.
    Y : ndarray of shape (N, n_tasks)
        ``{-1, +1}`` labels.
    C : float
        Box constraint.
    tol : float, default=1e-4
        libsvm's maximal-violating-pair gap to stop at, for every task.
    init : ndarray of shape (N, n_tasks) or None
        Signed duals to warm start from.
    max_iter, polish_every, max_free
        As :func:`mkl_tp.solvers.batch_svm.svm_duals_batch`.
    device : str or None
        torch device (``None``: CUDA when available, else the CPU).
    dtype : torch.dtype or None
        Arithmetic precision (``None``: float64, as libsvm).

    Returns
    -------
    duals : SVMDuals
        numpy arrays, as :func:`mkl_tp.solvers.svm.svm_duals`.
    info : dict
        ``n_iter``, ``violation`` (numpy), ``lipschitz``, ``device``.

    Notes
    -----
    Objective per task ``1'alpha - 1/2 a'Ka`` (the C-SVM dual with bias; the paper's Eq. 3
    inner problem).
    """
    device = resolve_device("auto" if device is None else device)
    dtype = torch.float64 if dtype is None else dtype
    K = torch.as_tensor(np.asarray(kernel), device=device).to(dtype)
    Yt = torch.as_tensor(np.asarray(Y, dtype=np.float64), device=device).to(dtype)
    lo = torch.where(Yt > 0, 0.0, -float(C)).to(dtype)
    hi = torch.where(Yt > 0, float(C), 0.0).to(dtype)
    n = K.shape[0]
    generator = torch.Generator(device="cpu").manual_seed(0)
    v = torch.randn((n, 1), generator=generator, dtype=torch.float64).to(device, dtype)
    lipschitz = 0.0
    for _ in range(30):
        v = v - v.mean()
        w = K @ v
        w = w - w.mean()
        lipschitz = float(torch.linalg.norm(w))
        if lipschitz == 0:
            break
        v = w / lipschitz
    if lipschitz > 0:
        lipschitz = 1.05 * float((v.T @ (K @ (v - v.mean()))).item())
    step = 1.0 / max(lipschitz, np.finfo(float).tiny)
    A = torch.zeros_like(Yt) if init is None else _project(
        torch.as_tensor(np.asarray(init, dtype=np.float64), device=device).to(dtype), lo, hi)
    KA = K @ A
    violation = _violation(KA - Yt, A, lo, hi)
    momentum_point, previous = A, A
    t = torch.ones(Yt.shape[1], dtype=dtype, device=device)
    n_iter = 0
    while n_iter < max_iter and float(violation.max()) > tol:
        n_iter += 1
        grad_m = K @ momentum_point - Yt
        new = _project(momentum_point - step * grad_m, lo, hi)
        uphill = (grad_m * (new - previous)).sum(dim=0) > 0
        t_next = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
        weight = torch.where(uphill, 0.0, (t - 1.0) / t_next)
        t = torch.where(uphill, 1.0, t_next)
        momentum_point = new + weight * (new - previous)
        previous = new
        if n_iter % polish_every == 0:
            KA_new = K @ new
            candidate = _polish(K, new, Yt, lo, hi, max_free)
            KA_cand = K @ candidate
            better = _objective(candidate, KA_cand, Yt) <= _objective(new, KA_new, Yt)
            A = torch.where(better, candidate, new)
            KA = torch.where(better, KA_cand, KA_new)
            violation = _violation(KA - Yt, A, lo, hi)
            momentum_point, previous = A, A
            t = torch.where(better, 1.0, t)
    if n_iter % polish_every != 0 or n_iter == 0:
        A = previous
        KA = K @ A
        violation = _violation(KA - Yt, A, lo, hi)
    gradient = KA - Yt
    intercept = _intercept(gradient, A, lo, hi)
    objective = -_objective(A, KA, Yt)
    duals = SVMDuals(*(x.double().cpu().numpy() for x in (A, intercept, objective)))
    return duals, {"n_iter": n_iter, "violation": violation.double().cpu().numpy(),
                   "lipschitz": lipschitz, "device": str(device)}
