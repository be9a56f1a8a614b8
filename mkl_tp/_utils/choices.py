"""The names the stages accept for their options, said once.

Importable without scikit-learn, so the command lines' ``--help`` stays light; each stage
checks its value with :func:`mkl_tp._utils.params.check_choice`.
"""

__all__ = ["BASE_KERNELS", "KERNELS", "NODE_NORMS", "PYRAMIDS"]

KERNELS = ("linear", "cross")
BASE_KERNELS = ("linear", "rbf", "chi2")
NODE_NORMS = ("none", "l2", "power")
PYRAMIDS = ("shared", "per_class")
