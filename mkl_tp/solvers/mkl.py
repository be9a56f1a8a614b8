"""Fitting node weights and SVMs: :func:`fit_mkl`, its alpha-step and per-class pyramids.

The alternating loops themselves (level method / SILP / lp-norm for ``kernel="linear"``,
mirror or projected gradient for ``kernel="cross"``) are in
:mod:`mkl_tp.solvers._alternation`; this module chooses the loop, builds the alpha-step
(the SVM duals on ``K_beta``) and runs one problem per one-vs-rest task for
``pyramids="per_class"``.
"""

import logging

import numpy as np

from .._utils.choices import KERNELS, PYRAMIDS
from .._utils.params import check_choice
from ..kernels.combine import n_nodes
from ._alternation import (
    Iterate,
    MKLResult,
    evaluate_starts,
    fit_cross,
    fit_linear,
    fit_linear_lp,
    make_result,
    mirror_ready,
    stack_tasks,
    task_iterate,
)
from ._common import in_threads
from .cost import resolve_solver as _resolve_solver
from .gram import TrainingKernels
from .svm import libsvm_tolerance, svm_duals

__all__ = ["MKLResult", "fit_mkl", "resolve_beta_method"]

SOLVERS = ("libsvm", "batch", "torch", "primal", "auto")
# beta-steps per kernel; "auto" takes the first.
BETA_METHODS = {"linear": ("level", "silp"), "cross": ("mirror", "projected")}
BETA_STEPS = tuple(name for names in BETA_METHODS.values() for name in names)


def resolve_beta_method(kernel, beta_method):
    """The beta-step ``beta_method`` names for ``kernel``.

    ``"auto"`` and the other kernel's step names give ``kernel``'s default step: like
    ``SVC``'s ``degree`` for non-polynomial kernels, a setting of the other kernel is
    ignored, so one grid can vary ``kernel`` with ``beta_method`` fixed.

    Raises
    ------
    ValueError
        When ``beta_method`` names no step of either kernel.
    """
    known = ("auto",) + BETA_STEPS
    if beta_method not in known:
        raise ValueError(f"beta_method must be one of {known}, got {beta_method!r}")
    choices = BETA_METHODS[kernel]
    return beta_method if beta_method in choices else choices[0]


class _AlphaStep:
    """The alpha-step of one fit: kernel source, SVM solver, warm start, solve count."""

    def __init__(self, kernels, Y, C, n_jobs, solver, solver_options, tol):
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        self.kernels, self.Y, self.C, self.n_jobs = kernels, Y, C, n_jobs
        self.libsvm_tol = libsvm_tolerance(tol)
        self.solver = solver
        self.options = dict(solver_options or {})
        # Every solver returns SVMDuals (its diagnostics in ``info``); all but libsvm warm
        # start from the previous duals and take solver_options.
        self._warm_starts = solver != "libsvm"
        if solver == "libsvm":
            self._solve = svm_duals
            self.options = {"n_jobs": n_jobs, "tol": self.libsvm_tol}
        elif solver == "batch":
            from .batch_svm import svm_duals_batch as solve

            self._solve = solve
        elif solver == "primal":
            from .primal import svm_duals_primal as solve

            self._solve = solve
            self._device = self.options.pop("device", None)
            self._dask = self.options.pop("dask", None)
            self.options.setdefault("tol", self.libsvm_tol)
            # The cross kernel's J is not convex: its descent ends where the alpha-steps'
            # duals lead, so it starts from exact duals, not coarse-start ones (equal only
            # within tol); the linear J is convex, so a coarse start cannot change its optimum.
            self.options.setdefault("coarse_start", kernels.kind == "linear")
        else:
            from .torch_svm import svm_duals_torch as solve

            self._solve = solve
        self.n_solves = 0
        self.inner_iterations = 0
        self._warm = None

    def __call__(self, beta):
        if self.solver == "primal":
            # Features Z with K_beta = Z Z' / D: no N x N kernel (solvers/primal.py).
            kernel, normaliser = self.kernels.features(beta, self._device, self._dask)
        else:
            kernel, normaliser = self.kernels.combined(beta)
        warm = {"init": self._warm} if self._warm_starts else {}
        duals = self._solve(kernel, self.Y, self.C, **warm, **self.options)
        self._warm = duals.coef
        self.inner_iterations += duals.info.get("n_iter", 0)
        self.n_solves += self.Y.shape[1]
        # The iterates keep the duals only: info can be large (the primal's weights).
        duals = duals._replace(info=None)
        return Iterate(beta, duals, normaliser, float(duals.objective.sum()))


def fit_mkl(
    blocks,
    Y,
    kernel="linear",
    C=1.0,
    tol=1e-3,
    max_iter=100,
    beta=None,
    learn=True,
    n_jobs=None,
    verbose=0,
    beta_method="auto",
    solver="libsvm",
    cache_bytes=None,
    solver_options=None,
    mkl_norm=1.0,
    pyramids="shared",
    memory_budget="available",
    kernels=None,
):
    """Learn node weights ``beta`` and one-vs-rest SVMs by alternating optimisation.

    Parameters
    ----------
    blocks : list of ndarray, each (N, P_s, m_s)
        Scaled node features per stream (unit mean-diagonal node kernels).
    Y : ndarray of shape (N, n_tasks)
        ``{-1, +1}`` one-vs-rest labels.
    kernel : {"linear", "cross"}
        Combination of node kernels (see :mod:`mkl_tp.kernels`).
    C : float
        SVM box constraint.
    tol : float
        Relative duality gap (linear) or relative decrease of ``J`` (cross) to stop at.
    max_iter : int
        Most alpha-steps (SVM solves per task).
    beta : ndarray of shape (P,) or None
        Starting weights (uniform when ``None``), e.g. a coarser pyramid's weights.
    learn : bool
        ``False`` keeps ``beta`` fixed: one alpha-step.
    n_jobs : int or None
        joblib workers over one-vs-rest tasks (``solver="libsvm"``).
    verbose : int
        Log every iteration at INFO level (DEBUG when 0).
    beta_method : {"auto", "level", "silp", "mirror", "projected"}, default="auto"
        beta-step. ``kernel="linear"``: the extended level method (``"level"``, the
        ``"auto"`` choice; a regularised cutting plane,
        :func:`~mkl_tp.solvers.beta.beta_step_level`) or plain SILP; both stop on the
        same certified gap. ``kernel="cross"``: entropic mirror descent (``"mirror"``, the
        ``"auto"`` choice, :func:`~mkl_tp.solvers.beta.beta_step_mirror`) or the
        projected-gradient QP step of docs/maths.rst (``"projected"``).
    solver : {"libsvm", "batch", "torch", "primal", "auto"}, default="libsvm"
        alpha-step: libsvm per task (the reference), or the warm-started batched dual
        solver over all tasks at once in numpy (:mod:`~mkl_tp.solvers.batch_svm`) or
        torch (:mod:`~mkl_tp.solvers.torch_svm`, CPU or GPU); ``"primal"`` solves the
        same SVMs on the weighted features without an ``N x N`` kernel
        (:mod:`~mkl_tp.solvers.primal`; numpy, or torch with a ``device`` in
        ``solver_options``); ``"auto"`` picks ``"libsvm"`` or ``"primal"`` by the cost
        and memory model of :func:`~mkl_tp.solvers.cost.choose_solver`. The dual solvers
        raise ``MemoryError`` before allocating a kernel larger than ``memory_budget``.
    cache_bytes : float or None
        Memory budget for cached per-node kernels (see
        :class:`~mkl_tp.solvers.gram.TrainingKernels`); ``None`` never caches.
    solver_options : dict or None
        Extra keyword arguments of the batched solvers (``tol``, ``device``, ...).
    mkl_norm : float, default=1.0
        ``p`` of lp-norm MKL for ``kernel="linear"`` (Kloft et al., JMLR 2011): the weights
        lie in the ``lp`` ball of radius ``P^(1/p - 1)`` that holds the uniform weights;
        ``1`` is the simplex (sparse weights), ``inf`` the uniform weights (no learning).
        Ignored by ``kernel="cross"``, whose normalised kernel does not depend on the
        weights' scale.
    pyramids : {"shared", "per_class"}, default="shared"
        One weight vector for all one-vs-rest tasks, or one per task (the paper's
        multiple pyramids): independent binary MKL problems on the same node kernels.
    memory_budget : int, None or "available", default="available"
        Bytes the dual path's kernels may take (see :mod:`~mkl_tp.solvers.cost`):
        ``"available"`` reads the memory available now, ``None`` checks nothing.
    kernels : TrainingKernels or None
        The node kernels of ``blocks`` when several fits share them (e.g. the folds of
        :func:`~mkl_tp.solvers.selection.select_mkl_norm` and the final fit); ``None``
        builds them within ``cache_bytes``.

    Returns
    -------
    MKLResult
        With ``pyramids="per_class"``: ``beta`` of shape
        ``(n_tasks, P)``, ``normaliser`` of shape ``(n_tasks,)``, ``history`` one list per
        task, ``objective`` the sum over tasks.

    Notes
    -----
    Minimises ``J(beta) = sum_c max_alpha 1'alpha_c - 1/2 a_c' K_beta a_c`` over the simplex
    (the paper's Eq. 3 read as min over ``beta`` of the SVM dual optimum; see docs/maths.rst).
    """
    n_total = n_nodes(blocks)
    beta = np.full(n_total, 1.0 / n_total) if beta is None else np.asarray(beta, float)
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    check_choice("kernel", kernel, KERNELS)
    check_choice("pyramids", pyramids, PYRAMIDS)
    if not mkl_norm >= 1:
        raise ValueError(f"mkl_norm must be >= 1, got {mkl_norm!r}")
    method = resolve_beta_method(kernel, beta_method)
    # lp-norm weights only shape the linear combination: the cross kernel is normalised,
    # so its weights' scale (and the ball they lie in) does not matter.
    if kernel == "linear" and np.isinf(mkl_norm):
        beta, learn = np.full(n_total, 1.0 / n_total), False
    solver = _resolve_solver(
        solver, blocks, kernel, beta, cache_bytes if learn else None, memory_budget
    )
    if kernels is None or kernels.kind != kernel:
        kernels = TrainingKernels(
            blocks, kernel, cache_bytes=cache_bytes if learn and solver != "primal" else None
        )
    options = dict(
        kernels=kernels,
        C=C,
        tol=tol,
        max_iter=max_iter,
        beta=beta,
        learn=learn,
        verbose=verbose,
        method=method,
        mkl_norm=mkl_norm,
        solver=solver,
        solver_options=solver_options,
    )
    if pyramids == "shared":
        result, steps = _fit_tasks(Y=Y, n_jobs=n_jobs, **options)
        return result._replace(
            n_svm_solves=steps.n_solves,
            n_inner_iter=steps.inner_iterations,
            kernel_cached=kernels.cached,
        )
    # One binary MKL per one-vs-rest task (the paper's multiple pyramids): independent
    # problems on the same node kernels, run in threads (libsvm and BLAS release the GIL).
    firsts, spent, start_step = [None] * Y.shape[1], 0, None
    if kernel == "cross" and learn:
        kernels.gram()  # computed once, before the tasks' threads share it
        # The starts are common to all tasks: one kernel per start serves every task.
        start_step = _AlphaStep(kernels, Y, C, n_jobs, solver, solver_options, tol)
        evaluated, spent = _cross_starts(
            start_step, beta, method, logging.INFO if verbose else logging.DEBUG
        )
        firsts = [task_iterate(*evaluated, c) for c in range(Y.shape[1])]
    fits = in_threads(
        lambda c: _fit_tasks(Y=Y[:, [c]], n_jobs=1, first=firsts[c], spent=spent, **options),
        range(Y.shape[1]),
        n_jobs,
    )
    return stack_tasks([fit for fit, _ in fits])._replace(
        n_svm_solves=sum(steps.n_solves for _, steps in fits)
        + (0 if start_step is None else start_step.n_solves),
        n_inner_iter=sum(steps.inner_iterations for _, steps in fits),
        kernel_cached=kernels.cached,
    )


def level_starts(blocks):
    """Weights of every pyramid level alone, uniform over its nodes, in every stream.

    The cross kernel's ``J`` is not convex: :func:`fit_mkl` evaluates these starts (and the
    given weights) and descends from the best.
    """
    per_stream = [b.shape[1] for b in blocks]
    if len(set(per_stream)) != 1 or (per_stream[0] + 1) & per_stream[0]:
        return []  # not one pyramid (2^L - 1 nodes) per stream
    levels = {int(np.log2(per_stream[0] + 1))}
    starts = []
    for level in range(1, levels.pop() + 1):
        node = np.zeros(per_stream[0])
        node[2 ** (level - 1) - 1 : 2**level - 1] = 1.0
        start = np.tile(node, len(blocks))
        starts.append(start / start.sum())
    return starts


def _cross_starts(alpha_step, beta, method, level):
    """The given weights and every level alone, evaluated over all tasks of ``alpha_step``."""
    starts = [beta] + [
        b for b in level_starts(alpha_step.kernels.blocks) if not np.allclose(b, beta)
    ]
    if method == "mirror":
        starts = [mirror_ready(b) for b in starts]
    return evaluate_starts(alpha_step, starts, level), len(starts)


def _fit_tasks(
    kernels,
    Y,
    C,
    tol,
    max_iter,
    beta,
    learn,
    n_jobs,
    verbose,
    method,
    mkl_norm,
    solver,
    solver_options,
    first=None,
    spent=0,
):
    """One MKL problem over the tasks ``Y`` (all of them share ``beta``).

    ``first``: for the cross kernel, an evaluated start to descend from (``spent`` alpha-steps
    already run for it); ``None`` evaluates the starts here.
    """
    alpha_step = _AlphaStep(kernels, Y, C, n_jobs, solver, solver_options, tol)
    level = logging.INFO if verbose else logging.DEBUG
    if not learn:
        current = alpha_step(beta)
        if kernels.kind == "linear":
            scale = beta.sum()
            current = current._replace(beta=beta / scale, normaliser=1.0 / scale)
        result = make_result(current, [current.objective], 1, 0.0, True)
    elif kernels.kind == "cross":
        if first is None:
            (iterates, _), spent = _cross_starts(alpha_step, beta, method, level)
            first = min(iterates, key=lambda it: it.objective)
        result = fit_cross(alpha_step, first, tol, max_iter, level, method, spent)
    elif mkl_norm == 1:
        result = fit_linear(alpha_step, beta, tol, max_iter, level, method)
    else:
        result = fit_linear_lp(alpha_step, beta, mkl_norm, tol, max_iter, level)
    return result, alpha_step
