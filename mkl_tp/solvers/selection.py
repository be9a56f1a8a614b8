"""How much to learn, chosen on the training set alone: the node weights' lp-norm (or the
coarse levels alone), and the cross kernel's base kernel.

Sparse (``p = 1``) weights fit small training sets too closely: on sequence sets of 36-270
videos learned weights lost up to 13 points to uniform weights (docs/maths.rst,
``benchmarks/bench_weights.py``). :func:`select_mkl_norm` compares candidate norms by
stratified cross-validation on the training videos and moves away from the uniform weights
(``p = inf``) only when the out-of-fold predictions show that learning pays: a less uniform
candidate replaces the current choice only when its accuracy is higher by more than one
standard error of the paired per-video differences (the one-standard-error rule of
Breiman et al. 1984 and Hastie, Tibshirani & Friedman, ESL 7.10, applied towards the
simpler model), that error corrected for the folds' overlapping training sets (Nadeau &
Bengio 2003, :func:`fold_variance_factor`). With few videos that error is large and the
weights stay uniform; with many videos a real gain is kept. Where depth hurts, uniform
weights on the coarse levels alone (:class:`Depth`) are candidates too
(:func:`norm_candidates`). :func:`select_base_kernel` applies the same rule to the cross
kernel's base kernel.
"""

from fractions import Fraction
from functools import partial
from typing import NamedTuple

import numpy as np

from .._utils.sampling import stratified_folds, stratified_subset
from ..kernels.combine import block_decisions, n_nodes, node_weight_blocks
from ..pyramid.weights import coarse_levels
from ._alternation import stack_tasks
from .gram import TrainingKernels
from .svm import one_vs_rest_labels

__all__ = [
    "MKL_NORM_CANDIDATES",
    "Depth",
    "norm_candidates",
    "score_key",
    "MAX_SELECTION_VIDEOS",
    "BASE_KERNEL_CANDIDATES",
    "select_mkl_norm",
    "select_base_kernel",
    "judge_fitted_cross",
    "one_standard_error_choice",
    "fold_variance_factor",
    "could_be_replaced",
    "describe_choice",
    "norm_label",
    "selection_tolerance",
]

# From the simplest (uniform) to the sparsest weights: each is tried against the choice so
# far, in this order.
MKL_NORM_CANDIDATES = (np.inf, 2.0, 1.0)


class Depth(NamedTuple):
    """A candidate of :func:`select_mkl_norm` that learns nothing: uniform weights on the
    pyramid levels ``1..levels`` only, zero on the finer nodes (where depth hurts)."""

    levels: int


def norm_candidates(levels):
    """The estimator's candidates for ``levels`` pyramid levels: uniform weights, then
    every shallower pyramid (:class:`Depth` 1, 2, ..., ``levels - 1``), then ``p = 2`` and
    ``p = 1`` on the whole pyramid."""
    return (np.inf,) + tuple(Depth(k) for k in range(1, levels)) + MKL_NORM_CANDIDATES[1:]


def score_key(candidate):
    """The key of ``candidate`` in a fitted model's ``mkl_norm_scores_``: the norm itself,
    a :class:`Depth`'s label (``"level 1"``, ...) so that saved models hold plain keys."""
    return norm_label(candidate) if isinstance(candidate, Depth) else candidate


# The folds' MKL loops stop at ten times the final fit's tolerance, never looser than this
# (unless the final tolerance itself is): see selection_tolerance.
_LOOSEST_FOLD_TOL = 1e-2


def selection_tolerance(tol):
    """The tolerance of the selection's fold fits for a final fit at ``tol``.

    ``max(tol, min(10 tol, 1e-2))``. The folds only have to predict their held-out videos,
    and the one-standard-error rule resolves accuracy differences of about a point: weights
    within a percent of the optimal objective predict the same videos (judging 3,000
    videos at levels 6, d = 512: the same scores to 0.2 points and the same choice, with
    the selection 24 s -> 18 s; ``benchmarks/bench_learning_cost.py``). The final fit on
    all videos is still certified to ``tol``.
    """
    return max(tol, min(10.0 * tol, _LOOSEST_FOLD_TOL))


# Videos the selection looks at, at most (see select_mkl_norm).
MAX_SELECTION_VIDEOS = 1000

# The cross kernel's base kernels, from the simplest on (see select_base_kernel).
BASE_KERNEL_CANDIDATES = ("linear", "rbf")


def _predict(train_blocks, test_blocks, result, kernel, n_classes):
    weights = node_weight_blocks(
        train_blocks, result.beta, result.duals.coef, kernel, result.normaliser
    )
    scores = block_decisions(test_blocks, weights) + result.duals.intercept
    if n_classes == 2:
        return (scores[:, 0] > 0).astype(int)
    return np.argmax(scores, axis=1)


def select_mkl_norm(
    fit,
    blocks,
    y_index,
    n_classes,
    kernel,
    candidates=MKL_NORM_CANDIDATES,
    n_folds=3,
    max_videos=MAX_SELECTION_VIDEOS,
    kernels=None,
    cache_bytes=None,
):
    """Choose ``p`` of lp-norm MKL by cross-validation with the one-standard-error rule.

    Parameters
    ----------
    fit : callable
        ``fit(blocks, Y, mkl_norm=p, kernels=...) -> MKLResult``, e.g.
        :func:`~mkl_tp.solvers.fit_mkl` with the estimator's other settings bound.
    blocks : list of ndarray, each (N, P_s, m_s)
        Scaled training node features per stream.
    y_index : ndarray of shape (N,)
        Class indices ``0..n_classes-1``.
    n_classes : int
    kernel : {"linear", "cross"}
    candidates : sequence of float, default=(inf, 2, 1)
        Norms from the most uniform to the sparsest.
    n_folds : int, default=3
        Stratified folds, in the videos' order like scikit-learn's ``*CV`` estimators (so a
        fit is deterministic); fewer when a class has fewer videos, and with fewer than two
        videos in some class no fold can hold it out and the first candidate is returned.
    max_videos : int, default=1000
        Larger training sets are judged on a stratified subset of this many videos (every
        ``N / max_videos``-th video of each class): the rule needs a standard error, which
        at this size resolves gains of one to two points (``sqrt(discordant videos) /
        max_videos``), not all of ``N``, and the selection then costs a bounded fraction of
        the final fit (the estimator's ``selection_videos``; docs/performance.rst measures
        1,000 against 3,000).
    kernels : TrainingKernels or None
        Node kernels of ``blocks`` (:class:`~mkl_tp.solvers.gram.TrainingKernels`); when
        cached, every fold's are cut from them instead of computed again.
    cache_bytes : float or None
        Without ``kernels``: the budget for the linear node kernels of the videos judged,
        computed once and cut for every fold and candidate (``None``: every fit computes
        its own).

    Returns
    -------
    p : float
        The chosen norm.
    accuracy : dict
        Out-of-fold accuracy of every candidate judged (empty when no folds could be
        made; only the first when the others could not have replaced it).
    start : ndarray of shape (P,) or None
        The mean of the chosen candidate's fold weights, a start for the fit on all
        videos (``None`` when the choice learned nothing, e.g. uniform weights); the
        weights of a :class:`Depth` choice.

    Notes
    -----
    Candidate ``q`` replaces the current choice ``p`` when
    ``mean(d) > sqrt(c) std(d) / sqrt(N)`` with ``d_i = [q right on video i] - [p right on
    i]`` and ``c`` the folds' variance correction (2.5 for three folds,
    :func:`fold_variance_factor`; decided exactly, :func:`one_standard_error_choice`).
    With ``w`` videos wrong under ``p``, the best ``d`` is ``1`` on those videos and ``0``
    elsewhere, which passes only for ``w >= 3`` with three folds (:func:`could_be_replaced`).
    When the first candidate is wrong on fewer videos the others are therefore not fitted:
    the choice is the same, and most of the selection's cost is saved on easy sets.

    Each fold's fit of a candidate starts from the mean of its weights on the folds fitted
    before (the first from the weights ``fit`` starts from). The linear MKL problem is
    convex: a start changes how many alpha-steps the certificate at ``tol`` takes, not the
    problem solved.
    """
    if kernels is not None and not kernels.cached:
        kernels = None
    if len(y_index) > max_videos:
        keep = stratified_subset(y_index, max_videos)
        blocks, y_index = [b[keep] for b in blocks], y_index[keep]
        kernels = None if kernels is None else kernels.subset(keep)
    if kernels is None and cache_bytes is not None and kernel == "linear":
        kernels = TrainingKernels(blocks, "linear", cache_bytes=cache_bytes)
        kernels = kernels if kernels.cached else None
    if np.bincount(y_index, minlength=n_classes).min() < 2:
        return candidates[0], {}, None
    folds = stratified_folds(y_index, n_folds)
    correct, weights = _out_of_fold(
        fit, blocks, y_index, n_classes, kernel, kernels, folds, candidates
    )
    chosen = one_standard_error_choice(correct, list(correct), n_folds=len(folds))
    scores = {p: float(c.mean()) for p, c in correct.items()}
    if isinstance(chosen, Depth):
        return chosen, scores, _fit_options(chosen, blocks, weights)["beta"]
    return chosen, scores, _mean_start(weights.get(chosen))


def _out_of_fold(fit, blocks, y_index, n_classes, kernel, kernels, folds, candidates):
    """Out-of-fold correctness per video of the candidates judged, and their weights
    per fold (candidate -> list of ``beta``).

    Folds are cut one at a time into buffers that every fold reuses (:class:`_FoldCuts`).
    A fold's later candidates are fitted as soon as the first candidate is wrong on two
    videos (:func:`could_be_replaced`); the folds cut before that are cut again for them,
    and when it never happens they are not fitted at all.
    """
    correct = {candidates[0]: np.zeros(len(y_index), dtype=bool)}
    weights = {}
    judge = partial(_judge, fit, y_index, n_classes, kernel, correct=correct, weights=weights)
    cuts = _FoldCuts(blocks, kernels, folds)
    waiting = []  # folds whose later candidates are not fitted (yet)
    for k, (train, test) in enumerate(folds):
        fold = cuts(train, test)
        judge(fold, candidates[:1])
        waiting.append(k)
        if len(candidates) > 1 and could_be_replaced(
            correct[candidates[0]][cuts.seen], n_folds=len(folds)
        ):
            for p in candidates[1:]:
                correct.setdefault(p, np.zeros(len(y_index), dtype=bool))
            # This fold first: cutting an earlier one again overwrites its buffers.
            for j in [k] + waiting[:-1]:
                fold = fold if j == k else cuts(*folds[j])
                judge(fold, candidates[1:])
            waiting = []
    return correct, weights


def _judge(fit, y_index, n_classes, kernel, fold, candidates, correct, weights):
    """Fit ``candidates`` on one fold's training videos, each from the mean of its
    weights on the folds before; mark their test videos right and keep the weights."""
    train, test, train_blocks, test_blocks, fold_kernels = fold
    Y = one_vs_rest_labels(y_index[train], n_classes)
    for p in candidates:
        result = fit(
            train_blocks, Y, kernels=fold_kernels, **_fit_options(p, train_blocks, weights)
        )
        predicted = _predict(train_blocks, test_blocks, result, kernel, n_classes)
        correct[p][test] = predicted == y_index[test]
        if not isinstance(p, Depth) and not np.isinf(p):
            weights.setdefault(p, []).append(result.beta)


def _fit_options(p, blocks, weights):
    """``fit``'s keywords for candidate ``p``: a :class:`Depth` fixes its weights; a norm
    starts from the mean of its weights on the folds before (``weights``), if any."""
    if isinstance(p, Depth):
        levels = int(np.log2(blocks[0].shape[1] + 1))
        return {
            "mkl_norm": 1.0,
            "learn": False,
            "beta": coarse_levels(p.levels, levels, len(blocks)),
        }
    start = _mean_start(weights.get(p))
    return {"mkl_norm": p} if start is None else {"mkl_norm": p, "beta": start}


def _mean_start(betas):
    """The mean of fold weights (``None`` for none): inside the simplex and the lp balls,
    which are convex."""
    return None if not betas else np.mean(betas, axis=0)


class _FoldCuts:
    """One fold's training and test blocks and node kernels, cut into buffers reused
    from fold to fold: a fresh allocation per fold pays its page faults again (about
    1 GiB per fold at 3,000 videos, levels 6, d = 512, as long as the cuts themselves).

    Calling it with ``(train, test)`` returns ``(train, test, train_blocks, test_blocks,
    kernels)``, valid until the next call; ``seen`` marks the test videos cut so far.
    """

    def __init__(self, blocks, kernels, folds):
        n_train = max(len(train) for train, _ in folds)
        n_test = max(len(test) for _, test in folds)
        self._blocks, self._kernels = blocks, kernels
        self._train = [np.empty((n_train,) + b.shape[1:], b.dtype) for b in blocks]
        self._test = [np.empty((n_test,) + b.shape[1:], b.dtype) for b in blocks]
        self._stack = None if kernels is None else kernels.subset_buffer(n_train)
        self.seen = np.zeros(blocks[0].shape[0], dtype=bool)

    def __call__(self, train, test):
        self.seen[test] = True
        train_blocks = _take_rows(self._blocks, train, self._train)
        test_blocks = _take_rows(self._blocks, test, self._test)
        fold_kernels = None
        if self._kernels is not None:
            fold_kernels = self._kernels.subset(train, blocks=train_blocks, out=self._stack)
        return train, test, train_blocks, test_blocks, fold_kernels


def _take_rows(blocks, rows, buffers):
    return [
        np.take(b, rows, axis=0, out=buffer[: len(rows)], mode="clip")
        for b, buffer in zip(blocks, buffers)
    ]


def select_base_kernel(fit, blocks, y_index, n_classes, n_folds=3, max_videos=MAX_SELECTION_VIDEOS):
    """Choose the cross kernel's base kernel by cross-validation with the one-SE rule.

    Each candidate's node blocks are judged with the weights ``fit`` is bound to, fixed
    (uniform unless the estimator is given its own; one SVM per class and fold, no MKL
    loop): the base kernel decides how well the nodes are represented, whatever the
    weights. A candidate replaces the one before (from the simplest,
    ``BASE_KERNEL_CANDIDATES``: linear, rbf) only when its out-of-fold accuracy is higher by
    more than one standard error (:func:`one_standard_error_choice`).

    Parameters
    ----------
    fit : callable
        ``fit(blocks, Y, kernel=...) -> MKLResult`` with the weights fixed, e.g.
        :func:`~mkl_tp.solvers.fit_mkl` with ``learn=False`` and the other settings bound.
    blocks : dict
        Base kernel -> its scaled node blocks (list of ndarray ``(N, P_s, m_s)``), the
        same videos in the same order.
    y_index : ndarray of shape (N,)
    n_classes : int
    n_folds, max_videos : int
        As :func:`select_mkl_norm`'s.

    Returns
    -------
    chosen : str
        The base kernel kept (the first candidate when no folds can be made).
    scores : dict
        Candidate -> out-of-fold accuracy with the cross kernel (empty without folds).
    correct : dict
        Candidate -> out-of-fold correctness per video judged (empty without folds).
    n_folds : int or None
        The folds ``correct`` comes from, for :func:`one_standard_error_choice`
        (``None`` without folds).
    """
    candidates = [c for c in BASE_KERNEL_CANDIDATES if c in blocks]
    blocks, y_index = _judged_videos([blocks[c] for c in candidates], y_index, max_videos)
    if np.bincount(y_index, minlength=n_classes).min() < 2:
        return candidates[0], {}, {}, None
    folds = stratified_folds(y_index, n_folds)
    correct = {
        base: _fixed_out_of_fold(fit, "cross", None, b, y_index, n_classes, folds)
        for base, b in zip(candidates, blocks)
    }
    chosen = one_standard_error_choice(correct, candidates, n_folds=len(folds))
    scores = {base: float(correct[base].mean()) for base in candidates}
    return chosen, scores, correct, len(folds)


def judge_fitted_cross(
    fit, cross_blocks, linear_blocks, y_index, n_classes, beta, n_folds=3, max_videos=None
):
    """Out-of-fold correctness of a fitted cross kernel's weights and of the linear kernel.

    Eq. 2 pools a level's nodes with their weights before comparing them: with weights even
    within a level it cannot tell sub-actions in a different order apart. Whether the
    fitted weights overcame that is judged here: one SVM per class and fold on the cross
    kernel with ``beta`` fixed, and on the same folds ``kernel="linear"`` (the nodes
    concatenated) with uniform weights. ``beta`` was fitted on all the videos, the held-out
    ones included, so the cross kernel's score is optimistic: when the linear kernel beats
    even that by one standard error, Eq. 2 does not separate these classes (the estimator
    then warns; the test is conservative, never the other way round).

    Parameters
    ----------
    fit : callable
        As :func:`select_base_kernel`'s.
    cross_blocks, linear_blocks : list of ndarray, each (N, P_s, m_s)
        The cross kernel's node blocks (its base kernel's) and the linear base kernel's,
        the same videos in the same order.
    y_index : ndarray of shape (N,)
    n_classes : int
    beta : ndarray of shape (P,) or (n_tasks, P)
        The fitted weights, shared or one row per one-vs-rest task.
    n_folds : int, default=3
    max_videos : int or None
        As :func:`select_mkl_norm`'s (``None``: every video).

    Returns
    -------
    correct : dict
        ``"cross"`` and ``"linear"`` -> out-of-fold correctness per video judged (empty
        when no folds can be made).
    n_folds : int or None
    """
    (cross_blocks, linear_blocks), y_index = _judged_videos(
        [cross_blocks, linear_blocks], y_index, max_videos
    )
    if np.bincount(y_index, minlength=n_classes).min() < 2:
        return {}, None
    folds = stratified_folds(y_index, n_folds)
    uniform = np.full(n_nodes(linear_blocks), 1.0 / n_nodes(linear_blocks))
    correct = {
        "cross": _fixed_out_of_fold(fit, "cross", beta, cross_blocks, y_index, n_classes, folds),
        "linear": _fixed_out_of_fold(
            fit, "linear", uniform, linear_blocks, y_index, n_classes, folds
        ),
    }
    return correct, len(folds)


def _judged_videos(block_lists, y_index, max_videos):
    """The blocks and labels of the videos judged: a stratified subset of ``max_videos``
    of a larger set (``None``: all)."""
    if max_videos is None or len(y_index) <= max_videos:
        return block_lists, y_index
    keep = stratified_subset(y_index, max_videos)
    return [[b[keep] for b in blocks] for blocks in block_lists], y_index[keep]


def _fixed_out_of_fold(fit, kernel, beta, blocks, y_index, n_classes, folds):
    """Out-of-fold correctness of one SVM per class and fold with the weights fixed:
    ``beta`` shared, or one row per task (each task then fitted on its own row); ``None``:
    the weights ``fit`` is bound to."""
    right, _ = _out_of_fold(
        partial(_fixed_fit, fit, kernel, None if beta is None else np.asarray(beta, float)),
        blocks,
        y_index,
        n_classes,
        kernel,
        None,
        folds,
        (np.inf,),
    )
    return right[np.inf]


def _fixed_fit(fit, kernel, beta, blocks, Y, mkl_norm, kernels=None):
    if beta is None:
        return fit(blocks, Y, kernel=kernel)
    if beta.ndim == 1:
        return fit(blocks, Y, kernel=kernel, beta=beta)
    return stack_tasks(
        [fit(blocks, Y[:, [c]], kernel=kernel, beta=beta[c]) for c in range(Y.shape[1])]
    )


def could_be_replaced(correct, n_folds=None):
    """Whether any candidate could replace a choice with this out-of-fold ``correct``
    (``n_folds`` as :func:`one_standard_error_choice`'s).

    The most a candidate can gain is being right exactly where the choice is wrong and
    nowhere else (for a given sum ``s``, ``sum(d^2)`` is least when no ``d_i`` is ``-1``,
    and the rule's condition grows with ``s``): ``w`` ones, ``s = sum(d^2) = w``. With
    three folds that takes three wrong videos or more (two with no correction).
    """
    correct = np.asarray(correct, dtype=bool)
    wrong = int(np.count_nonzero(~correct))
    return _beats(wrong, wrong, correct.size, n_folds)


def fold_variance_factor(n_folds):
    """``c`` by which k-fold cross-validation inflates the variance of a mean difference.

    ``1 + k / (k - 1)`` for ``k = n_folds`` (5/2 for three folds), ``1`` for ``None``: the
    corrected resampled t-test of Nadeau & Bengio (2003), ``1/J + n_test/n_train`` times the
    variance of one split, applied to k-fold cross-validation as Bouckaert & Frank (2004) do
    (``J = k``, ``n_test / n_train = 1 / (k - 1)``). The folds' training sets overlap, so
    their errors are correlated, and the naive standard error of the per-video differences
    is too small: a noisy candidate then passes the one-standard-error rule too often
    (docs/maths.rst measures what that cost). A ``fractions.Fraction``, so that the
    rule is decided exactly.
    """
    return Fraction(1) if n_folds is None else 1 + Fraction(int(n_folds), int(n_folds) - 1)


def _beats(total, nonzero, n, n_folds):
    """Whether paired differences ``d_i`` in ``{-1, 0, 1}`` (``n`` of them, ``nonzero``
    not 0, sum ``total``) have ``mean(d) > sqrt(c) std(d) / sqrt(n)`` (``ddof=1``,
    ``c`` from :func:`fold_variance_factor`), decided exactly: ``s > 0`` and
    ``s^2 (n - 1 + c) > c n sum(d^2)`` (``s^2 > sum(d^2)`` with no correction)."""
    c = fold_variance_factor(n_folds)
    return total > 0 and total * total * (n - 1 + c) > c * n * nonzero


def one_standard_error_choice(correct, candidates, n_folds=None):
    """The candidate the one-standard-error rule keeps, from the simplest on.

    Parameters
    ----------
    correct : dict
        Candidate -> boolean array of out-of-fold correctness, one entry per video.
    candidates : sequence
        Keys of ``correct`` from the simplest (e.g. uniform weights) to the most complex.
    n_folds : int or None
        The cross-validation folds ``correct`` comes from: the standard error is then
        corrected for their overlapping training sets (:func:`fold_variance_factor`,
        ``sqrt(2.5)`` times the naive one for three folds). ``None``: independent test
        videos, no correction.

    Returns
    -------
    The first candidate, replaced in turn by each later one whose accuracy exceeds the
    current choice's by more than one (corrected) standard error of the paired differences.

    Notes
    -----
    For ``d_i`` in ``{-1, 0, 1}`` with sum ``s``, ``mean(d) > std(d) / sqrt(N)`` (``ddof=1``)
    is ``s > 0`` and ``s^2 > sum(d_i^2)``; with the correction ``c`` of ``k`` folds,
    ``s^2 (N - 1 + c) > c N sum(d_i^2)``: decided in exact rationals, so an exact tie
    never passes by rounding.
    """
    chosen = candidates[0]
    for candidate in candidates[1:]:
        difference = np.asarray(correct[candidate], dtype=np.int64) - np.asarray(
            correct[chosen], dtype=np.int64
        )
        nonzero = int(np.count_nonzero(difference))
        if _beats(int(difference.sum()), nonzero, difference.size, n_folds):
            chosen = candidate
    return chosen


def norm_label(p):
    """How reports name a candidate norm: ``"inf"`` (uniform weights), ``"2"``, ``"1"``;
    a :class:`Depth` ``"level 1"``, ``"levels 1-2"``, ..."""
    if isinstance(p, Depth):
        return "level 1" if p.levels == 1 else f"levels 1-{p.levels}"
    return "inf" if p is None or np.isinf(p) else f"{float(p):g}"


def describe_choice(
    scores, candidates, chosen, correct=None, label=norm_label, name="p=", n_folds=None
):
    """What a one-standard-error choice decided, for the report and the log.

    Parameters
    ----------
    scores : dict
        Candidate -> out-of-fold accuracy of those judged (the first always).
    candidates : sequence
        As :func:`one_standard_error_choice`'s, from the simplest on.
    chosen
        The candidate kept.
    correct : dict, optional
        Candidate -> per-video correctness, to state the gain and its standard error.
    label : callable, default=norm_label
        How a candidate is written.
    name : str, default="p="
        What precedes a candidate in the sentence (e.g. ``"base kernel "``).
    n_folds : int or None
        The folds ``correct`` comes from: the standard error stated is the corrected one
        the rule used (:func:`one_standard_error_choice`).

    Returns
    -------
    dict
        ``candidates`` (label -> accuracy, rounded to 4 places), ``chosen`` (label) and
        ``decision``, one sentence.
    """
    first = candidates[0]
    judged = [c for c in candidates if c in scores]
    record = {
        "candidates": {label(c): round(float(scores[c]), 4) for c in judged},
        "chosen": label(chosen),
    }

    def said(c):
        return label(c) if isinstance(c, Depth) else f"{name}{label(c)}"

    if chosen == first and len(record["candidates"]) == 1:
        record["decision"] = (
            f"{said(first)} kept: too few training videos wrong out of fold for any "
            "candidate to beat it by one standard error (the others were not fitted)"
        )
    elif chosen == first:
        record["decision"] = (
            f"{said(first)} kept: no candidate beat it by more than one standard error"
        )
    else:
        text = f"{said(chosen)} chosen over {said(first)}"
        if correct is not None:
            difference = np.asarray(correct[chosen], float) - np.asarray(correct[first], float)
            error = difference.std(ddof=1) / np.sqrt(difference.size)
            error *= np.sqrt(float(fold_variance_factor(n_folds)))
            text += f": {difference.mean():+.4f} out of fold, one standard error {error:.4f}"
            if n_folds is not None:
                text += f" (corrected for {n_folds} folds)"
        record["decision"] = text
    return record
