"""alpha-step in torch: the batched dual solver of :mod:`mkl_tp.solvers.batch_svm` on a device.

:func:`~mkl_tp.solvers.batch_svm.svm_duals_batch` is written against the array API, so
given torch tensors it runs in torch; this module only places the kernel on the device.
Each iteration is one ``(N, N) x (N, n_tasks)`` product, which a GPU does in a fraction of
a millisecond; on a CPU libsvm is faster (docs/performance.rst).

torch is imported when this module is: it is only imported when ``solver="torch"`` is
selected, so the core does not depend on it (install the ``deep`` extra).
"""

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "solver='torch' needs PyTorch: pip install 'mkl_tp[deep]' (or pip install torch)"
    ) from exc

from .._utils.devices import resolve_device  # noqa: E402  (after torch's friendly ImportError)
from ._common import KernelOperator  # noqa: E402
from .batch_svm import svm_duals_batch  # noqa: E402

__all__ = ["svm_duals_torch"]


def _to_device(array, device, dtype):
    return None if array is None else torch.as_tensor(np.asarray(array), device=device).to(dtype)


def svm_duals_torch(
    kernel,
    Y,
    C,
    tol=1e-4,
    init=None,
    max_iter=5000,
    polish_every=25,
    max_free=3000,
    lipschitz=None,
    device=None,
    dtype=None,
):
    """Solve all one-vs-rest SVM duals on one kernel at once, in torch.

    Parameters
    ----------
    kernel : ndarray of shape (N, N) or KernelOperator
        Positive semi-definite training kernel (an operator's matrix or features are
        moved to ``device``).
    Y : ndarray of shape (N, n_tasks)
        ``{-1, +1}`` labels.
    C : float
        Box constraint.
    tol, init, max_iter, polish_every, max_free, lipschitz
        As :func:`mkl_tp.solvers.batch_svm.svm_duals_batch`.
    device : str or None
        torch device (``None``: CUDA when available, else the CPU).
    dtype : torch.dtype or None
        Precision of the kernel products (``None``: float64, as libsvm); the duals are
        float64.

    Returns
    -------
    SVMDuals
        numpy arrays, as :func:`mkl_tp.solvers.svm.svm_duals`, with ``info`` as
        :func:`~mkl_tp.solvers.batch_svm.svm_duals_batch` gives it, plus ``device``.
    """
    device = resolve_device("auto" if device is None else device)
    dtype = torch.float64 if dtype is None else dtype
    if isinstance(kernel, KernelOperator):
        operator = KernelOperator(
            kernel=_to_device(kernel.kernel, device, dtype),
            features=_to_device(kernel.features, device, dtype),
            scale=kernel.scale,
        )
    else:
        operator = KernelOperator(_to_device(kernel, device, dtype))
    duals = svm_duals_batch(
        operator,
        Y,
        C,
        tol=tol,
        init=init,
        max_iter=max_iter,
        polish_every=polish_every,
        max_free=max_free,
        lipschitz=lipschitz,
    )
    duals.info["device"] = str(device)
    return duals
