"""PyramidMKLClassifier: the scikit-learn estimator over variable-length sequences."""

import logging
import time
import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._utils.choices import BASE_KERNELS, KERNELS, NODE_NORMS, PYRAMIDS
from ._utils.params import (
    ARRAY_LIKE,
    NONE,
    Exactly,
    Interval,
    Kind,
    Options,
    check_parameters,
    cross_check_wanted,
    without_cross_check,
)
from ._utils.persist import VersionedPickleMixin
from ._utils.platt import fit_sigmoids, sigmoid_proba
from ._utils.sampling import stratified_subset
from .kernels.combine import block_decisions, node_weight_blocks
from .kernels.streams import fit_stream_blocks, stream_blocks
from .pyramid.inputs import SINGLE_STREAM, validate_labels, validate_streams, video_tags
from .pyramid.weights import coarse_start, initial_node_weights
from .solvers.distributed import is_dask_device
from .solvers.gram import TrainingKernels
from .solvers.mkl import BETA_STEPS, SOLVERS, fit_mkl
from .solvers.selection import (
    BASE_KERNEL_CANDIDATES,
    MAX_SELECTION_VIDEOS,
    Depth,
    judge_fitted_cross,
    norm_candidates,
    one_standard_error_choice,
    score_key,
    select_base_kernel,
    select_mkl_norm,
    selection_tolerance,
)
from .solvers.svm import one_vs_rest_labels
from .store import FeatureSequence

__all__ = ["PyramidMKLClassifier"]

logger = logging.getLogger(__name__)

PER_CLASS_MAX_CLASSES = 20  # pyramids="auto": per-class cross weights up to this many classes
PROBABILITY_FOLDS = 5  # probability=True: out-of-fold decisions of 5 folds, as SVC's libsvm


def _subset(arrays, index):
    """The videos ``index`` of one validated stream (a cache's stay on disk)."""
    if isinstance(arrays, FeatureSequence):
        return FeatureSequence(arrays.path, [arrays.ids[i] for i in index])
    return [arrays[i] for i in index]


def _videos(names, data, index):
    """The videos ``index`` of validated ``(names, data)`` in the form :meth:`fit` takes."""
    if names is None:
        return _subset(data[SINGLE_STREAM], index)
    return {name: _subset(data[name], index) for name in names}


class PyramidMKLClassifier(VersionedPickleMixin, ClassifierMixin, BaseEstimator):
    """Temporal-pyramid multiple-kernel SVM over sequences of frame features.

    Every video (a ``(T_i, d)`` array of per-frame features, any ``T_i >= 1``) is pooled over
    the ``2**levels - 1`` nodes of a temporal pyramid; each node gets a kernel, and one weight
    per node ``beta`` on the simplex is learned jointly with one-vs-rest SVMs.

    Parameters
    ----------
    levels : int, default=4
        Pyramid levels (15 nodes). The paper goes to 6 (63 nodes); 3-4 levels already
        capture the order of sub-actions in short clips at a fraction of the cost.
    kernel : {"linear", "cross"}, default="linear"
        ``"linear"``: ``K = sum_p beta_p K_p`` (the paper's concatenation (*)), convex, solved
        to a certified duality gap. ``"cross"``: the paper's Eq. 2 cross-node combination
        ``sum_{p,q} beta_p beta_q k(psi_p, psi_q')`` (averaging (**)), normalised to unit
        mean diagonal; not convex, solved to a stationary point from the best of several
        starts.
    base_kernel : {"auto", "cv", "linear", "rbf", "chi2"}, default="auto"
        Kernel ``k`` between two node descriptors, through one explicit feature map per
        stream shared by its nodes (Nystroem on all its nodes' descriptors for ``rbf`` and
        ``chi2``; ``chi2`` needs non-negative features). ``"auto"``: ``"linear"`` for
        ``kernel="linear"``, ``"rbf"`` for ``kernel="cross"`` -- with a linear ``k`` the
        cross kernel is the kernel of one weighted-mean descriptor; a non-linear ``k``
        compares every node with every other (docs/maths.rst). ``"cv"`` (for
        ``kernel="cross"``; ``"auto"``'s choice otherwise): ``"linear"`` or ``"rbf"``
        chosen on the training videos by 3-fold cross-validation with the weights fixed,
        ``"rbf"`` only when it is more accurate by more than one standard error
        (:func:`~mkl_tp.solvers.selection.select_base_kernel`); on the public sets
        measured it did not beat ``"rbf"`` (docs/maths.rst). With ``"auto"`` or ``"cv"``
        the fitted cross kernel is then judged against ``kernel="linear"`` on 3 folds
        (:func:`~mkl_tp.solvers.selection.judge_fitted_cross`), and the fit warns when
        the linear kernel is better by more than one standard error
        (``linear_kernel_better_``): where Eq. 2 cannot separate the classes the fit
        says so rather than silently return chance.
    node_norm : {"none", "l2", "power"}, default="l2"
        Per-node normalisation before the base kernel (``power`` = signed square root then
        l2). l2 makes every node comparable regardless of its length.
    C : float, default=1.0
        SVM box constraint. Node kernels have unit mean diagonal, so the usual SVC range
        (0.1-100) applies.
    tol : float, default=1e-3
        Stop at relative duality gap (linear) / relative decrease of the objective (cross)
        below ``tol``.
    max_iter : int, default=100
        Most alternating iterations (alpha-steps); a ``ConvergenceWarning`` when reached.
    node_weights : {"learn", "uniform"} or array-like, default="learn"
        ``"learn"`` runs MKL; ``"uniform"`` fixes ``beta = 1/P`` (the baseline); an array of
        shape ``(P,)`` (or ``(n_streams, P)``) fixes ``beta`` to it after scaling to sum 1.
    n_components : int, default=512
        Nystroem landmarks per stream for ``rbf`` and ``chi2`` base kernels (exact on the
        training descriptors when at least ``n_videos * n_nodes``); one map serves all
        the stream's nodes, so it is sized for ``P`` times more points than a per-node map.
    gamma : float or None, default=None
        Width of ``rbf`` / ``chi2``; ``None`` = ``1 / mean distance`` between the stream's
        node descriptors.
    n_jobs : int or None, default=None
        joblib workers over one-vs-rest SVMs (threads: libsvm releases the GIL; a
        ``joblib.parallel_backend`` context overrides that, e.g. Dask).
    verbose : int, default=0
        Log each iteration at INFO level (DEBUG otherwise) through ``logging``; show them
        with ``logging.basicConfig(level=logging.INFO)``.
    random_state : int, RandomState or None, default=None
        Seeds the Nystroem landmarks and the per-node PCA, and shuffles the folds of
        ``probability=True`` (the only randomness).
    beta_method : {"auto", "level", "silp", "mirror", "projected"}, default="auto"
        beta-step. ``kernel="linear"``: the extended level method (``"level"``, chosen by
        ``"auto"``; it projects onto a level set instead of jumping between LP vertices, the
        cause of SILP's slow convergence at many nodes, docs/maths.rst) or plain SILP, both to
        the same certified duality gap. ``kernel="cross"``: entropic mirror descent
        (``"mirror"``, chosen by ``"auto"``) or the projected-gradient QP step
        (``"projected"``, docs/maths.rst); ``J`` is not convex there and they reach
        different stationary points (docs/performance.rst, "Choosing the settings"). A step
        name of the other kernel is ignored, so a grid can vary ``kernel`` with
        ``beta_method`` fixed.
    solver : {"auto", "libsvm", "batch", "torch", "primal"}, default="auto"
        alpha-step. ``"libsvm"``: one scikit-learn ``SVC`` per one-vs-rest task on the
        ``N x N`` kernel (the exact reference, and the fastest on CPU for small ``N``).
        ``"batch"``: all tasks at once by a warm-started accelerated projected-gradient
        dual solver with active-set polishing (numpy); ``"torch"``: the same in torch, on
        ``device`` (needs the ``deep`` extra). ``"primal"``: the same SVMs solved on the
        weighted node features, never forming ``N x N`` (augmented Lagrangian with
        semismooth Newton, :mod:`mkl_tp.solvers.primal`; in torch on ``device`` when one
        is given): the way past ~20,000 videos. ``"auto"`` takes ``"primal"`` when the
        kernel would not fit the available memory or when the model of
        :mod:`mkl_tp.solvers.cost` finds it cheaper, else ``"libsvm"``. All agree with
        libsvm to its tolerance; the dual solvers stop with ``MemoryError`` before
        allocating a kernel that does not fit.
    device : str or None, default=None
        torch device of ``solver="torch"`` (``None``: ``"cuda"`` when available, else
        ``"cpu"``), or of ``"primal"``/``"auto"`` (``None``: numpy on the CPU).
    cache_size : float, default=4096
        Memory budget in MiB for the per-node kernels of ``kernel="linear"`` (float32,
        ``P N^2 4`` bytes). Within it every ``K_beta`` is one pass over the cache;
        beyond it (or with 0) each is recomputed by a product on the weighted node blocks.
    dtype : {"float64", "float32"}, default="float64"
        Storage of node descriptors and features. float32 halves the ``N P d`` arrays (the
        largest ones of a fit with large ``d``); descriptors still accumulate in float64
        and node kernels are formed in float64, so only storage rounding (~6e-8) enters.
    pca_components : int or None, default=None
        Per-node PCA: project every node's features onto their top ``pca_components``
        right singular vectors (uncentred, fitted on the training videos), i.e. replace
        each node kernel by its best low-rank approximation (``kernel="cross"``: one
        projection fitted on all nodes, a common basis for the cross-node terms). The
        paper's Table 5 uses 128 dims for 2048-d features.
    subsample : int or None, default=20000
        Training videos (stratified by class, evenly spaced, deterministic) on which the
        ``rbf``/``chi2`` feature maps and the per-node PCA are fitted; ``None``: all. With
        at most this many videos the fit is unchanged. Node features are then computed a
        chunk of videos at a time, so a fit holds the reduced ``N x P x pca_components``
        features and this sample's descriptors, never all ``N x P x d`` descriptors nor
        all frames (with a :class:`~mkl_tp.store.FeatureSequence`, frames stay on disk).
    beta_init : array-like or None, default=None
        Starting weights of the learning (``node_weights="learn"``), e.g. the ``beta_`` of
        a coarser pyramid: a vector of a ``levels' < levels`` pyramid is extended by giving
        each new node its level-mean weight ``1 / n_nodes(levels')``, then normalised.
    mkl_norm : "auto" or float in [1, inf], default="auto"
        ``p`` of lp-norm MKL (Kloft et al., JMLR 2011) for ``kernel="linear"``: ``1`` gives
        sparse weights, larger ``p`` spreads them, ``inf`` is the uniform weights.
        ``"auto"`` chooses by 3-fold cross-validation on the training videos among the
        uniform weights, uniform weights on the coarse levels only (levels 1, 1-2, ...,
        where depth hurts: ``depth_``), ``2`` and ``1``, in this order, a candidate
        replacing the choice so far only when its out-of-fold gain exceeds one standard
        error, corrected for the folds' overlapping training sets
        (:func:`~mkl_tp.solvers.selection.select_mkl_norm`): sparse weights overfit
        small training sets. Ignored by the cross kernel, which is
        normalised and so blind to the weights' norm.
    selection_videos : int, default=1000
        The most training videos that ``mkl_norm="auto"`` and ``base_kernel="cv"`` judge:
        larger sets are judged on a stratified subset of this many
        (:func:`~mkl_tp.solvers.selection.select_mkl_norm`). The one-standard-error rule
        then resolves gains of one to two points; a larger value resolves smaller ones at
        a cost that grows with its square (docs/performance.rst).
    pyramids : {"auto", "shared", "per_class"}, default="auto"
        One weight vector for all one-vs-rest classes, or one per class (the paper's
        multiple pyramids, its Table 5): independent binary MKL problems. ``"auto"``:
        ``"per_class"`` for ``kernel="cross"`` with learned weights (its one weighted pooling
        can then differ between classes) and at most ``PER_CLASS_MAX_CLASSES`` (20)
        classes, each its own alternation; else ``"shared"`` (docs/maths.rst).
    dask : bool, str or None, default=None
        Run the primal alpha-steps on a Dask cluster, the node blocks sharded by rows over
        its workers (:mod:`mkl_tp.solvers.distributed`, docs/scale_out.rst): ``True`` uses
        the session's client (``distributed.Client(...)`` made before), a string is a
        scheduler address (``"tcp://host:8786"``). Needs ``solver="primal"`` or ``"auto"``.
    probability : bool, default=False
        Also fit Platt's sigmoids for ``predict_proba`` and ``predict_log_proba``,
        as ``SVC(probability=True)`` does: the decisions of every video by a model fitted
        without it (stratified 5-fold cross-validation shuffled by ``random_state``; fewer
        folds when a class has fewer videos, which needs at least 2 per class) give one
        sigmoid per one-vs-rest task (scikit-learn's Platt fit, as
        ``CalibratedClassifierCV(method="sigmoid", ensemble=False)``); the probabilities
        of more than two classes are normalised to sum 1. Opt-in: it costs about five more
        fits on 4/5 of the videos. ``predict`` still takes the largest decision, so it
        may disagree with the most probable class (as SVC's). With ``False`` the two
        methods are not there (``hasattr`` is False), so probability scorers refuse.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    beta_ : ndarray of shape ([n_tasks,] [n_streams,] n_nodes)
        Learned node weights, level-major (see :mod:`mkl_tp.pyramid`); all entries of all
        streams sum to 1, so ``beta_.sum(axis=-1)`` are the stream weights. Per-class
        weights have a leading axis of one-vs-rest tasks (one task for two classes).
    base_kernel_, pyramids_, mkl_norm_ : str, str, float or None
        The resolved ``base_kernel``, ``pyramids`` and lp norm (``None``: fixed weights).
    mkl_norm_scores_ : dict
        Out-of-fold accuracy of each candidate judged when ``mkl_norm="auto"`` chose; keys:
        the norms, and ``"level 1"``, ``"levels 1-2"``, ... for the coarse levels alone
        (only ``inf`` when the others could not have replaced it, see
        :func:`~mkl_tp.solvers.selection.select_mkl_norm`); empty when nothing was chosen.
    mkl_norm_seconds_ : float
        Seconds spent choosing the norm (0 when nothing was chosen).
    depth_ : int
        Pyramid levels the weights use: ``levels``, or fewer when ``mkl_norm="auto"``
        found that uniform weights on the coarse levels alone do better out of fold (then
        ``mkl_norm_`` is ``inf`` and ``beta_`` is zero on the finer nodes).
    base_kernel_scores_ : dict
        ``kernel="cross"``, ``base_kernel="cv"``: out-of-fold accuracy of each candidate
        base kernel with the weights fixed (empty otherwise, or without folds).
    cross_kernel_score_, linear_kernel_score_ : float or None
        ``kernel="cross"``, ``base_kernel="auto"`` or ``"cv"``: out-of-fold accuracy of
        the fitted cross kernel with its weights fixed (optimistic: the weights were
        fitted on every training video) and of ``kernel="linear"`` with uniform weights,
        on the same 3 folds of at most ``selection_videos`` training videos (``None``
        otherwise, or without folds).
    linear_kernel_better_ : bool or None
        Whether that linear kernel beat the fitted cross kernel out of fold by more than
        one standard error: Eq. 2 averages a level's nodes, blind to their order, and
        cannot separate classes that differ only in it. The fit then warns, naming both
        scores.
    base_kernel_seconds_, linear_check_seconds_ : float
        Seconds spent choosing the base kernel (both base kernels' node features
        included) and judging the fitted cross kernel against the linear one.
    streams_ : list of str
        Stream names, when fitted on a mapping.
    objective_, objective_history_ : float, list of float
        Final objective ``J(beta)``; ``J`` after every accepted iteration.
    n_iter_ : int
        Alternating iterations run.
    converged_ : bool
        Whether the stopping rule was met before ``max_iter``.
    n_svm_solves_ : int
        Binary SVM duals solved (alpha-steps times one-vs-rest tasks).
    n_features_in_, n_features_per_stream_ : int, dict
        Frame feature dimension ``d`` (single-stream fits); stream name -> ``d``.
    feature_maps_, node_projections_, node_scales_ : dict
        Per stream: the fitted base-kernel feature maps, per-node PCA projections (or
        ``None``) and unit-mean-diagonal scales of the node features.
    coef_ : list of ndarray, each (n_tasks, n_nodes, m_s)
        Per stream, the SVMs' primal weights on the node features
        (:func:`~mkl_tp.kernels.node_weight_blocks`): decisions are linear in them.
    intercept_ : ndarray of shape (n_tasks,)
    probA_, probB_ : ndarray of shape (n_tasks,)
        ``probability=True``: Platt's sigmoid of each one-vs-rest task (one task for two
        classes, for ``classes_[1]``), ``1 / (1 + exp(probA_ * f + probB_))`` of its
        out-of-fold decisions ``f``, SVC's convention.

    Examples
    --------
    >>> from mkl_tp import PyramidMKLClassifier, load_basic_motions
    >>> train, test = load_basic_motions()
    >>> clf = PyramidMKLClassifier(levels=3).fit(train.X, train.y)
    >>> clf.beta_.shape
    (7,)
    """

    def __init__(
        self,
        *,
        levels=4,
        kernel="linear",
        base_kernel="auto",
        node_norm="l2",
        C=1.0,
        tol=1e-3,
        max_iter=100,
        node_weights="learn",
        n_components=512,
        gamma=None,
        n_jobs=None,
        verbose=0,
        random_state=None,
        beta_method="auto",
        solver="auto",
        device=None,
        cache_size=4096,
        dtype="float64",
        pca_components=None,
        subsample=20000,
        beta_init=None,
        mkl_norm="auto",
        pyramids="auto",
        dask=None,
        probability=False,
        selection_videos=MAX_SELECTION_VIDEOS,
    ):
        self.levels = levels
        self.kernel = kernel
        self.base_kernel = base_kernel
        self.node_norm = node_norm
        self.C = C
        self.tol = tol
        self.max_iter = max_iter
        self.node_weights = node_weights
        self.n_components = n_components
        self.gamma = gamma
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state
        self.beta_method = beta_method
        self.solver = solver
        self.device = device
        self.cache_size = cache_size
        self.dtype = dtype
        self.pca_components = pca_components
        self.subsample = subsample
        self.beta_init = beta_init
        self.mkl_norm = mkl_norm
        self.pyramids = pyramids
        self.dask = dask
        self.probability = probability
        self.selection_videos = selection_videos

    _parameter_constraints = {
        "levels": [Interval(Integral, 1)],
        "kernel": [Options(KERNELS)],
        "base_kernel": [Options(("auto", "cv") + BASE_KERNELS)],
        "node_norm": [Options(NODE_NORMS)],
        "C": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1)],
        "node_weights": [Options(("learn", "uniform")), ARRAY_LIKE],
        "n_components": [Interval(Integral, 1)],
        "gamma": [NONE, Interval(Real, 0, None, closed="neither")],
        "n_jobs": [NONE, Interval(Integral)],
        "verbose": [Interval(Integral, 0), Kind(bool, "a bool")],
        "beta_method": [Options(("auto",) + BETA_STEPS)],
        "solver": [Options(SOLVERS)],
        "device": [NONE, Kind(str, "a torch device name")],
        "dask": [NONE, Kind((bool, str), "True (the session's client) or a scheduler address")],
        "cache_size": [Interval(Real, 0, None, closed="left")],
        "dtype": [Options(("float64", "float32"), dtype=True)],
        "pca_components": [NONE, Interval(Integral, 1)],
        "subsample": [NONE, Interval(Integral, 1)],
        "beta_init": [NONE, ARRAY_LIKE],
        "mkl_norm": [
            Options(("auto",)),
            Interval(Real, 1, None, closed="left"),
            Exactly(np.inf, "inf"),
        ],
        "pyramids": [Options(("auto",) + PYRAMIDS)],
        "probability": [Kind((bool, np.bool_), "a bool")],
        "selection_videos": [Interval(Integral, 1)],
    }

    def _solver_options(self):
        """``device`` and ``dask`` for the alpha-step solver that uses them."""
        dask, device = self.dask, self.device
        if dask is None and is_dask_device(device):
            warnings.warn(
                f"device={device!r} for a Dask cluster is deprecated: pass dask="
                f"{True if device == 'dask' else device!r}",
                FutureWarning,
                stacklevel=3,
            )
            dask, device = device, None
        if dask not in (None, False):
            if self.solver not in ("primal", "auto"):
                raise ValueError(f"dask runs the primal solver; got solver={self.solver!r}")
            return {"dask": "dask" if dask is True else dask}
        if self.solver == "torch" or (self.solver in ("primal", "auto") and device is not None):
            return {"device": device}
        return None

    def _mkl_norm(self, fit, blocks, y_index, n_classes, learn, kernels):
        """``(p, out-of-fold accuracy per candidate, start)``: ``mkl_norm`` or its ``"auto"``
        choice, and the weights the final fit starts from (``None``: its own start)."""
        if not learn:
            return None, {}, None
        if self.mkl_norm != "auto":
            return float(self.mkl_norm), {}, None
        if self.kernel == "cross":
            # Nothing to choose: the normalised cross kernel is blind to the weights' norm.
            return 1.0, {}, None
        # How far from uniform the data supports is judged with shared weights, whatever
        # the pyramids: per-class candidates would cost one binary MKL per class and fold.
        # The folds cut their node kernels from the full set's, which the final fit uses.
        # The folds only predict their held-out videos: their loops stop early
        # (selection_tolerance); the final fit is certified to tol.
        return select_mkl_norm(
            partial(fit, pyramids="shared", tol=selection_tolerance(float(self.tol))),
            blocks,
            y_index,
            n_classes,
            self.kernel,
            candidates=norm_candidates(self.levels),
            max_videos=self.selection_videos,
            kernels=kernels,
            cache_bytes=fit.keywords["cache_bytes"],
        )

    def _final_options(self, fit, blocks, y_index, n_classes, learn, kernels):
        """The final fit's keywords once ``mkl_norm`` is resolved (:meth:`_mkl_norm`); sets
        ``mkl_norm_``, ``mkl_norm_scores_``, ``mkl_norm_seconds_`` and ``depth_``."""
        start = time.perf_counter()
        chosen, scores, warm = self._mkl_norm(fit, blocks, y_index, n_classes, learn, kernels)
        self.mkl_norm_scores_ = {score_key(c): accuracy for c, accuracy in scores.items()}
        self.mkl_norm_seconds_ = time.perf_counter() - start
        self.depth_ = self.levels
        options = {"kernels": kernels, "mkl_norm": 1.0 if chosen is None else chosen}
        if isinstance(chosen, Depth):
            # The coarse levels alone did better out of fold: their uniform weights, fixed.
            self.depth_, chosen = chosen.levels, np.inf
            options.update(mkl_norm=1.0, learn=False)
        self.mkl_norm_ = chosen
        if warm is not None:
            # The selection's folds ended near the optimum: the final fit starts from their
            # mean weights (the problem is convex; the start only shortens the certificate).
            options["beta"] = warm
        return options

    def _choose_base_kernel(self, data, y_index, n_classes, fit):
        """The cross kernel's node blocks for ``base_kernel="cv"``: every candidate base
        kernel's, judged by :func:`~mkl_tp.solvers.selection.select_base_kernel` with the
        weights fixed; keeps the chosen one's feature maps."""
        start = time.perf_counter()
        fitted = {}
        for base in BASE_KERNEL_CANDIDATES:
            self.base_kernel_ = base
            blocks = self._node_blocks(data, fit=True, y_index=y_index)
            fitted[base] = (blocks, self.feature_maps_, self.node_projections_, self.node_scales_)
        chosen, self.base_kernel_scores_, _, _ = select_base_kernel(
            partial(fit, learn=False, pyramids="shared"),
            {base: parts[0] for base, parts in fitted.items()},
            y_index,
            n_classes,
            max_videos=self.selection_videos,
        )
        self.base_kernel_ = chosen
        blocks, self.feature_maps_, self.node_projections_, self.node_scales_ = fitted[chosen]
        self.base_kernel_seconds_ = time.perf_counter() - start
        logger.info(
            "base kernel %r chosen for kernel='cross' (out of fold, uniform weights: %s)",
            chosen,
            ", ".join(f"{b} {a:.4f}" for b, a in self.base_kernel_scores_.items()),
        )
        return blocks

    def _check_linear_kernel(self, data, y_index, n_classes, fit, blocks, beta):
        """Judge the fitted cross kernel (its weights fixed) against ``kernel="linear"``
        on the same folds of at most ``selection_videos`` training videos
        (:func:`~mkl_tp.solvers.selection.judge_fitted_cross`); warn when the linear
        kernel is better by more than one standard error."""
        start = time.perf_counter()
        judged_data, judged_y, judged_blocks = data, y_index, blocks
        if len(y_index) > self.selection_videos:
            judged = stratified_subset(y_index, self.selection_videos)
            judged_data = {name: _subset(arrays, judged) for name, arrays in data.items()}
            judged_y, judged_blocks = y_index[judged], [b[judged] for b in blocks]
        # The linear kernel's blocks, for the judged videos only, as a kernel="linear" fit
        # would build them; the model keeps its own maps.
        linear_blocks = self._fit_blocks(judged_data, judged_y, "linear", shared_pca=False)[0]
        correct, n_folds = judge_fitted_cross(
            partial(fit, learn=False, pyramids="shared"),
            judged_blocks,
            linear_blocks,
            judged_y,
            n_classes,
            beta,
        )
        self.linear_check_seconds_ = time.perf_counter() - start
        if not correct:
            return
        self.cross_kernel_score_ = float(correct["cross"].mean())
        self.linear_kernel_score_ = float(correct["linear"].mean())
        better = one_standard_error_choice(correct, ["cross", "linear"], n_folds=n_folds)
        self.linear_kernel_better_ = better == "linear"
        logger.info(
            "kernel='cross' with its fitted weights %.4f out of fold, kernel='linear' %.4f",
            self.cross_kernel_score_,
            self.linear_kernel_score_,
        )
        if self.linear_kernel_better_:
            warnings.warn(
                f"kernel='cross' scored {self.cross_kernel_score_:.3f} out of fold with its "
                f"fitted weights (base kernel {self.base_kernel_!r}; optimistic, the weights "
                f"saw every video) against {self.linear_kernel_score_:.3f} for "
                "kernel='linear': Eq. 2 averages the nodes of a level, blind to their "
                "order, and separates these classes less well; kernel='linear' keeps it",
                stacklevel=3,
            )

    def _node_blocks(self, data, fit, y_index=None):
        """Scaled node blocks per stream (:func:`~mkl_tp.kernels.streams.stream_blocks`);
        fits the feature maps, the PCA and the node scales when ``fit``."""
        if not fit:
            return stream_blocks(
                data,
                self.feature_maps_,
                self.node_projections_,
                self.node_scales_,
                **self._block_settings(),
            )
        fitted = self._fit_blocks(data, y_index, self.base_kernel_, self.kernel == "cross")
        blocks, self.feature_maps_, self.node_projections_, self.node_scales_ = fitted
        return blocks

    def _block_settings(self):
        return {"levels": self.levels, "norm": self.node_norm, "dtype": np.dtype(self.dtype)}

    def _fit_blocks(self, data, y_index, base_kernel, shared_pca):
        """``(blocks, feature maps, node projections, node scales)`` fitted on ``data``
        (:func:`~mkl_tp.kernels.streams.fit_stream_blocks`), the model left as it is."""
        return fit_stream_blocks(
            data,
            y_index,
            base_kernel=base_kernel,
            n_components=self.n_components,
            gamma=self.gamma,
            pca_components=self.pca_components,
            subsample=self.subsample,
            shared_pca=shared_pca,
            random_state=check_random_state(self.random_state),
            **self._block_settings(),
        )

    def fit(self, X, y):
        """Learn node weights and one-vs-rest SVMs.

        Parameters
        ----------
        X : sequence of array-like of shape (T_i, d), or mapping str -> such a sequence
            Per-frame features of each video; a mapping gives several streams (e.g.
            ``{"appearance": ..., "motion": ...}``) over the same videos, whose nodes share
            one simplex. Streams may have different ``d``. Several streams may also come
            video by video, ``[{"appearance": (T_i, d) array, "motion": (T_i', d')
            array}, ...]`` (every video with the same stream names), which scikit-learn
            can index by video (``cross_val_score``, ``GridSearchCV``). A
            :class:`~mkl_tp.store.FeatureSequence` stands for a list and is read a chunk
            of videos at a time. A 3-D array is refused as ambiguous: ``list(X)`` reads
            it as ``(n_videos, T, d)``, frames first; aeon and sktime collections are
            channels first, ``(n_cases, n_channels, n_timepoints)``: convert them with
            :func:`mkl_tp.sources.from_channels_first`.
        y : array-like of shape (n_videos,)
            Labels (any type ``numpy.unique`` sorts).

        Returns
        -------
        self
        """
        check_parameters(self, self._parameter_constraints)
        names, data = validate_streams(X)
        n_videos = len(next(iter(data.values())))
        classes, y_index = validate_labels(y, n_videos)
        folds = self._probability_folds(y_index, classes) if self.probability else None
        beta0, learn = initial_node_weights(self.node_weights, self.levels, len(data))
        if learn and self.beta_init is not None:
            beta0 = coarse_start(self.beta_init, self.levels, len(data))
        cross = self.kernel == "cross"
        self.base_kernel_ = (
            ("rbf" if cross else "linear")
            if self.base_kernel in ("auto", "cv")
            else self.base_kernel
        )
        # Fixed weights are the same for every class: per-class pyramids only when learning.
        self.pyramids_ = (
            self.pyramids
            if self.pyramids != "auto"
            else "per_class"
            if cross and learn and len(classes) <= PER_CLASS_MAX_CLASSES
            else "shared"
        )
        cache_bytes = float(self.cache_size) * 2**20
        fit = partial(
            fit_mkl,
            kernel=self.kernel,
            C=float(self.C),
            tol=float(self.tol),
            max_iter=int(self.max_iter),
            beta=beta0,
            learn=learn,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            beta_method=self.beta_method,
            solver=self.solver,
            cache_bytes=cache_bytes,
            solver_options=self._solver_options(),
            pyramids=self.pyramids_,
        )
        self.base_kernel_scores_, self.linear_kernel_score_ = {}, None
        self.cross_kernel_score_, self.linear_kernel_better_ = None, None
        self.base_kernel_seconds_ = self.linear_check_seconds_ = 0.0
        if cross and self.base_kernel == "cv":
            blocks = self._choose_base_kernel(data, y_index, classes.shape[0], fit)
        else:
            blocks = self._node_blocks(data, fit=True, y_index=y_index)
        kernels = None
        if (
            learn
            and self.kernel == "linear"
            and self.mkl_norm == "auto"
            and n_videos <= self.selection_videos
        ):
            kernels = TrainingKernels(blocks, "linear", cache_bytes=cache_bytes)
        options = self._final_options(fit, blocks, y_index, classes.shape[0], learn, kernels)
        result = fit(blocks, one_vs_rest_labels(y_index, classes.shape[0]), **options)
        self.coef_ = node_weight_blocks(
            blocks, result.beta, result.duals.coef, self.kernel, result.normaliser
        )
        self.intercept_ = result.duals.intercept
        self.n_features_per_stream_ = {name: arrays[0].shape[1] for name, arrays in data.items()}
        self.classes_ = classes
        # (n_tasks,) leading axis for per-class weights, then (n_streams,) for a mapping.
        shape = result.beta.shape[:-1] + ((len(names),) if names else ()) + (-1,)
        self.beta_ = result.beta.reshape(shape)
        if names is None:
            self.n_features_in_ = self.n_features_per_stream_[SINGLE_STREAM]
        else:
            self.streams_ = names
        self.objective_ = result.objective
        self.objective_history_ = list(result.history)
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.n_svm_solves_ = result.n_svm_solves
        if folds is not None:
            self._fit_probability(folds, names, data, y_index)
        if cross and self.base_kernel in ("auto", "cv") and cross_check_wanted():
            # Last: whatever random numbers it draws, the model and its probabilities are
            # those of the same fit without the check.
            self._check_linear_kernel(data, y_index, classes.shape[0], fit, blocks, result.beta)
        return self

    def _probability_folds(self, y_index, classes):
        """The stratified folds of ``probability=True``, checked before anything is fitted."""
        counts = np.bincount(y_index, minlength=classes.shape[0])
        if counts.min() < 2:
            smallest = classes.tolist()[counts.argmin()]
            raise ValueError(
                "probability=True fits Platt's sigmoids on cross-validated decisions, which "
                f"needs at least 2 videos of every class; class {smallest!r} has {counts.min()}"
            )
        return StratifiedKFold(
            n_splits=int(min(PROBABILITY_FOLDS, counts.min())),
            shuffle=True,
            random_state=self.random_state,
        )

    def _fit_probability(self, folds, names, data, y_index):
        """``probA_``, ``probB_``: Platt's sigmoid of every one-vs-rest task, fitted by
        scikit-learn's calibration on the decisions of the folds' models (fitted without
        probabilities, the other settings the same) for their held-out videos."""
        # tests/test_proba.py compares with CalibratedClassifierCV.
        start = time.perf_counter()
        base = clone(self).set_params(probability=False)
        labels = self.classes_[y_index]
        n_tasks = 1 if self.classes_.shape[0] == 2 else self.classes_.shape[0]
        scores = np.empty((y_index.shape[0], n_tasks))
        splits = folds.split(np.zeros((y_index.shape[0], 1)), y_index)
        for train, test in splits:
            with without_cross_check():
                model = clone(base).fit(_videos(names, data, train), labels[train])
            if not np.array_equal(model.classes_, self.classes_):  # stratified: never
                raise RuntimeError("a probability fold lacks a class")
            scores[test] = model.decision_function(_videos(names, data, test)).reshape(
                test.shape[0], n_tasks
            )
        self.probA_, self.probB_ = fit_sigmoids(scores, y_index, self.classes_.shape[0])
        logger.log(
            logging.INFO if self.verbose else logging.DEBUG,
            "probability: Platt's sigmoids on %d-fold out-of-fold decisions (%.1f s)",
            folds.get_n_splits(),
            time.perf_counter() - start,
        )

    def decision_function(self, X):
        """One-vs-rest SVM scores.

        Parameters
        ----------
        X : sequence of (T_i, d) arrays, or streams as in :meth:`fit` (a mapping or per-video
            mappings)

        Returns
        -------
        ndarray of shape (n_videos,) for two classes (positive favours ``classes_[1]``),
        else (n_videos, n_classes)
        """
        check_is_fitted(self, "beta_")
        _, data = validate_streams(
            X, streams=getattr(self, "streams_", None), n_features=self.n_features_per_stream_
        )
        blocks = self._node_blocks(data, fit=False)
        scores = block_decisions(blocks, self.coef_) + self.intercept_
        return scores[:, 0] if self.classes_.shape[0] == 2 else scores

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : sequence of (T_i, d) arrays, or streams as in :meth:`fit` (a mapping or per-video
            mappings)

        Returns
        -------
        ndarray of shape (n_videos,)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def _check_proba(self):
        # getattr: a model saved before the parameter existed has no probabilities either.
        if not getattr(self, "probability", False):
            raise AttributeError("predict_proba is not available when probability=False")
        return True

    @available_if(_check_proba)
    def predict_proba(self, X):
        """Class probabilities: Platt's sigmoids of the one-vs-rest decisions
        (``probability=True``).

        Each task's decision ``f`` becomes ``1 / (1 + exp(probA_ * f + probB_))``; for two
        classes that is the probability of ``classes_[1]`` (``classes_[0]`` gets the rest),
        for more, the sigmoids are divided by their sum (as ``CalibratedClassifierCV``). The
        most probable class may differ from :meth:`predict`'s (as with ``SVC``).

        Parameters
        ----------
        X : sequence of (T_i, d) arrays, or streams as in :meth:`fit` (a mapping or per-video
            mappings)

        Returns
        -------
        ndarray of shape (n_videos, n_classes)
            Columns in the order of ``classes_``; every row sums to 1.
        """
        check_is_fitted(self, "beta_")
        if not hasattr(self, "probA_"):
            raise NotFittedError(
                "predict_proba is not available when fitted with probability=False: fit again"
            )
        scores = self.decision_function(X)
        return sigmoid_proba(scores, self.probA_, self.probB_, self.classes_.shape[0])

    @available_if(_check_proba)
    def predict_log_proba(self, X):
        """Log of ``predict_proba`` (``probability=True``).

        Parameters
        ----------
        X : sequence of (T_i, d) arrays, or streams as in :meth:`fit` (a mapping or per-video
            mappings)

        Returns
        -------
        ndarray of shape (n_videos, n_classes)
        """
        return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        """Input is videos, not a 2-D table: a list of ``(T_i, d)`` arrays or per-video
        mappings of streams; dense, finite, real."""
        return video_tags(super().__sklearn_tags__())
