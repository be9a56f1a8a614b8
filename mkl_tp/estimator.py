"""PyramidMKLClassifier: the scikit-learn estimator over variable-length sequences."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._validation import _SINGLE, _validate_labels, _validate_streams
from .kernels import (
    BASE_KERNELS,
    NODE_NORMS,
    apply_feature_maps,
    fit_feature_maps,
    normalize_nodes,
    unit_diagonal_scales,
    weighted_features,
)
from .pyramid import n_nodes, node_descriptors_batch
from .solvers.mkl import fit_mkl
from .solvers.svm import one_vs_rest_labels

__all__ = ["PyramidMKLClassifier"]


class PyramidMKLClassifier(ClassifierMixin, BaseEstimator):
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
        to a certified duality gap. ``"cross"``: kernel of the weighted mean descriptor
        ``sum_p beta_p psi_p`` (averaging (**)), normalised to unit mean diagonal; not
        convex, solved to a stationary point.
    base_kernel : {"linear", "rbf", "chi2"}, default="linear"
        Kernel between two descriptors of a node. ``rbf`` and ``chi2`` use explicit feature
        maps (Nystroem, additive chi2 sampler); ``chi2`` needs non-negative features.
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
    n_components : int, default=256
        Nystroem landmarks per node for ``base_kernel="rbf"``.
    gamma : float or None, default=None
        RBF width; ``None`` = ``1 / mean squared distance`` of each node's descriptors.
    n_jobs : int or None, default=None
        joblib workers over one-vs-rest SVMs.
    verbose : int, default=0
        Log each iteration at INFO level (DEBUG otherwise) through ``logging``; show them
        with ``logging.basicConfig(level=logging.INFO)``.
    random_state : int, RandomState or None, default=None
        Seeds the Nystroem landmarks (the only randomness).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    beta_ : ndarray of shape (n_nodes,) or (n_streams, n_nodes)
        Learned node weights, level-major (see :mod:`mkl_tp.pyramid`); all entries of all
        streams sum to 1, so ``beta_.sum(axis=1)`` are the stream weights.
    streams_ : list of str
        Stream names, when fitted on a mapping.
    objective_ : float
        Final objective ``J(beta)``.
    objective_history_ : list of float
        ``J`` after every accepted iteration.
    n_iter_ : int
        Alternating iterations run.
    converged_ : bool
        Whether the stopping rule was met before ``max_iter``.

    Examples
    --------
    >>> from mkl_tp import PyramidMKLClassifier, load_basic_motions
    >>> train, test = load_basic_motions()
    >>> clf = PyramidMKLClassifier(levels=3).fit(train.X, train.y)
    >>> clf.beta_.shape
    (7,)
    """

    def __init__(self, levels=4, kernel="linear", base_kernel="linear", node_norm="l2",
                 C=1.0, tol=1e-3, max_iter=100, node_weights="learn", n_components=256,
                 gamma=None, n_jobs=None, verbose=0, random_state=None):
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

    def _check_params(self):
        if isinstance(self.levels, bool) or not isinstance(self.levels, Integral) \
                or self.levels < 1:
            raise ValueError(f"levels must be an integer >= 1, got {self.levels!r}")
        if self.kernel not in ("linear", "cross"):
            raise ValueError(f"kernel must be 'linear' or 'cross', got {self.kernel!r}")
        if self.base_kernel not in BASE_KERNELS:
            raise ValueError(
                f"base_kernel must be one of {BASE_KERNELS}, got {self.base_kernel!r}")
        if self.node_norm not in NODE_NORMS:
            raise ValueError(f"node_norm must be one of {NODE_NORMS}, got {self.node_norm!r}")
        for name in ("C", "tol"):
            value = getattr(self, name)
            if not isinstance(value, Real) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.max_iter, Integral) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")

    def _initial_beta(self, n_streams):
        """``(beta0, learn)`` from ``node_weights``; beta0 flat over streams, sums to 1."""
        total = n_streams * n_nodes(self.levels)
        if isinstance(self.node_weights, str):
            if self.node_weights not in ("learn", "uniform"):
                raise ValueError(
                    "node_weights must be 'learn', 'uniform' or an array of weights, got "
                    f"{self.node_weights!r}")
            return np.full(total, 1.0 / total), self.node_weights == "learn"
        beta = np.asarray(self.node_weights, dtype=float).ravel()
        if beta.shape != (total,) or not np.isfinite(beta).all() or (beta < 0).any() \
                or beta.sum() <= 0:
            raise ValueError(
                f"node_weights must hold {total} non-negative finite weights "
                f"({n_streams} stream(s) x {n_nodes(self.levels)} nodes) with a positive "
                f"sum, got shape {np.shape(self.node_weights)}")
        return beta / beta.sum(), False

    def _node_blocks(self, data, fit):
        """Scaled node features per stream; fits maps and scales when ``fit``."""
        if fit:
            rng = check_random_state(self.random_state)
            self._maps, self._scales = {}, {}
        blocks = []
        for name, arrays in data.items():
            psi = normalize_nodes(node_descriptors_batch(arrays, self.levels), self.node_norm)
            if fit:
                self._maps[name] = fit_feature_maps(
                    psi, self.base_kernel, n_components=self.n_components, gamma=self.gamma,
                    random_state=rng.randint(np.iinfo(np.int32).max))
            phi = apply_feature_maps(psi, self._maps[name])
            if fit:
                self._scales[name] = unit_diagonal_scales(phi)
            blocks.append(phi / np.sqrt(self._scales[name])[None, :, None])
        return blocks

    def fit(self, X, y):
        """Learn node weights and one-vs-rest SVMs.

        Parameters
        ----------
        X : sequence of array-like of shape (T_i, d), or mapping str -> such a sequence
            Per-frame features of each video; a mapping gives several streams (e.g.
            ``{"appearance": ..., "motion": ...}``) over the same videos, whose nodes share
            one simplex. Streams may have different ``d``.
        y : array-like of shape (n_videos,)
            Labels (any type ``numpy.unique`` sorts).

        Returns
        -------
        self
        """
        self._check_params()
        names, data = _validate_streams(X)
        n_videos = len(next(iter(data.values())))
        classes, y_index = _validate_labels(y, n_videos)
        beta0, learn = self._initial_beta(len(data))
        blocks = self._node_blocks(data, fit=True)
        result = fit_mkl(
            blocks, one_vs_rest_labels(y_index, classes.shape[0]), kernel=self.kernel,
            C=float(self.C), tol=float(self.tol), max_iter=int(self.max_iter), beta=beta0,
            learn=learn, n_jobs=self.n_jobs, verbose=self.verbose)
        features = weighted_features(blocks, result.beta, self.kernel)
        self._coef = features.T @ result.duals.coef / result.normaliser
        self._intercept = result.duals.intercept
        self._n_features = {name: arrays[0].shape[1] for name, arrays in data.items()}
        self.classes_ = classes
        if names is None:
            self.beta_ = result.beta
            self.n_features_in_ = self._n_features[_SINGLE]
        else:
            self.streams_ = names
            self.beta_ = result.beta.reshape(len(names), -1)
        self.objective_ = result.objective
        self.objective_history_ = list(result.history)
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        return self

    def decision_function(self, X):
        """One-vs-rest SVM scores.

        Parameters
        ----------
        X : sequence of (T_i, d) arrays, or mapping of streams as in :meth:`fit`

        Returns
        -------
        ndarray of shape (n_videos,) for two classes (positive favours ``classes_[1]``),
        else (n_videos, n_classes)
        """
        check_is_fitted(self, "beta_")
        _, data = _validate_streams(X, streams=getattr(self, "streams_", None),
                                    n_features=self._n_features)
        blocks = self._node_blocks(data, fit=False)
        features = weighted_features(blocks, np.ravel(self.beta_), self.kernel)
        scores = features @ self._coef + self._intercept
        return scores[:, 0] if self.classes_.shape[0] == 2 else scores

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : sequence of (T_i, d) arrays, or mapping of streams as in :meth:`fit`

        Returns
        -------
        ndarray of shape (n_videos,)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]
