"""Solvers: the alpha-step (SVM duals), the beta-step (LP / QP) and the alternating loop."""

from .beta import beta_step_lp, beta_step_qp, cross_objective, cross_gradient
from .mkl import MKLResult, fit_mkl
from .svm import SVMDuals, svm_duals

__all__ = [
    "SVMDuals",
    "svm_duals",
    "beta_step_lp",
    "beta_step_qp",
    "cross_objective",
    "cross_gradient",
    "MKLResult",
    "fit_mkl",
]
