"""Solvers: the alpha-step (SVM duals), the beta-step (LP / QP) and the alternating loop.

The torch alpha-step (:mod:`mkl_tp.solvers.torch_svm`) is not imported here: torch is
loaded only when ``solver="torch"`` is selected.
"""

from .batch_svm import svm_duals_batch
from .beta import (
    SimplexProjection,
    beta_least_norm,
    beta_step_level,
    beta_step_lp,
    beta_step_lp_norm,
    beta_step_mirror,
    beta_step_qp,
    cross_gradient,
    cross_objective,
    lp_dual_gap,
    lp_radius,
)
from .mkl import MKLResult, fit_mkl
from .svm import SVMDuals, one_vs_rest_labels, svm_duals

__all__ = [
    "SVMDuals",
    "svm_duals",
    "svm_duals_batch",
    "one_vs_rest_labels",
    "beta_step_lp",
    "beta_least_norm",
    "beta_step_level",
    "beta_step_qp",
    "beta_step_mirror",
    "beta_step_lp_norm",
    "lp_radius",
    "lp_dual_gap",
    "SimplexProjection",
    "cross_objective",
    "cross_gradient",
    "MKLResult",
    "fit_mkl",
]
