"""Late fusion of per-stream classifiers with a fusion weight learned on held-out folds."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._utils.params import Interval, check_parameters, without_cross_check
from ._utils.persist import VersionedPickleMixin
from ._utils.platt import fit_sigmoids, sigmoid_proba
from ._utils.sampling import stratified_folds
from .estimator import PyramidMKLClassifier
from .pyramid.inputs import validate_labels, validate_streams, video_tags

__all__ = ["LateFusionClassifier"]


def _scores(model, X):
    """Decision scores as ``(n, n_classes)`` (binary scores become ``[-s, s]``)."""
    scores = model.decision_function(X)
    return np.column_stack([-scores, scores]) if scores.ndim == 1 else scores


def _rms(scores):
    scale = float(np.sqrt(np.mean(scores**2)))
    return scale if scale > 0 else 1.0


class LateFusionClassifier(VersionedPickleMixin, ClassifierMixin, BaseEstimator):
    """One classifier per stream, scores fused with weights learned on held-out folds.

    Each stream gets its own clone of ``estimator``; the fused score is
    ``sum_s w_s z_s / r_s`` with ``z_s`` the stream's one-vs-rest scores, ``r_s`` their
    root-mean-square on held-out training folds (a common scale) and ``w`` on the simplex,
    chosen on a grid to maximise the accuracy of out-of-fold predictions on the training
    videos (stratified ``cv`` folds; the mean of the grid points that tie for the best).
    Final models are refitted on all training videos.

    Parameters
    ----------
    estimator : estimator, default=None
        Per-stream classifier with ``decision_function`` (``PyramidMKLClassifier()`` when
        ``None``).
    cv : int, default=3
        Stratified folds for learning the fusion weights.
    grid_step : float, default=0.05
        Spacing of the weight grid on the simplex (two streams: 21 candidates).
    random_state : int or None, default=None
        Shuffles the folds; ``None`` keeps them in the videos' order (deterministic).

    Attributes
    ----------
    classes_ : ndarray
    streams_ : list of str
    estimators_ : dict str -> fitted estimator
    stream_weights_ : ndarray of shape (n_streams,)
    score_scales_ : ndarray of shape (n_streams,)
        ``r_s``, the held-out RMS of each stream's scores.
    probA_, probB_ : ndarray of shape (n_tasks,)
        Platt's sigmoid of each class's fused score (one task, ``classes_[1]``, for two
        classes), fitted on the out-of-fold fused scores (``predict_proba``).
    """

    _parameter_constraints = {
        "cv": [Interval(Integral, 2)],
        "grid_step": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(self, estimator=None, *, cv=3, grid_step=0.05, random_state=None):
        self.estimator = estimator
        self.cv = cv
        self.grid_step = grid_step
        self.random_state = random_state

    def _weight_grid(self, n_streams):
        steps = int(round(1.0 / self.grid_step))
        if n_streams == 1:
            return np.ones((1, 1))
        grid = np.stack(
            np.meshgrid(*[np.arange(steps + 1)] * (n_streams - 1), indexing="ij"), -1
        ).reshape(-1, n_streams - 1)
        grid = grid[grid.sum(axis=1) <= steps]
        return np.column_stack([grid, steps - grid.sum(axis=1)]) / steps

    def fit(self, X, y):
        """Fit per-stream classifiers and learn the fusion weights.

        Parameters
        ----------
        X : mapping str -> sequence of (T_i, d_s) arrays, or sequence of mappings
            The streams' per-frame features: ``{"rgb": [...], "flow": [...]}``, or the same
            videos one by one, ``[{"rgb": (T_i, d) array, "flow": (T_i', d') array},
            ...]`` (every video with the same stream names), which scikit-learn can index
            by video (``cross_val_score``, ``GridSearchCV``, ``CalibratedClassifierCV``).
        y : array-like of shape (n_videos,)

        Returns
        -------
        self
        """
        check_parameters(self, self._parameter_constraints)
        names, data = validate_streams(X)
        if names is None:
            raise ValueError(
                "LateFusionClassifier needs a mapping stream name -> sequences, or a list "
                "of per-video mappings stream name -> (T, d) array"
            )
        classes, y_index = validate_labels(y, len(data[names[0]]))
        base = PyramidMKLClassifier() if self.estimator is None else self.estimator
        folds = stratified_folds(y_index, self.cv, self.random_state)
        if not folds:
            raise ValueError("learning the fusion weights needs at least 2 videos of every class")
        held_out = {name: np.zeros((len(y_index), classes.shape[0])) for name in names}
        for train, test in folds:
            for name in names:
                with without_cross_check():
                    model = clone(base).fit([data[name][i] for i in train], y_index[train])
                scores = _scores(model, [data[name][i] for i in test])
                held_out[name][np.ix_(test, model.classes_)] = scores
        self.score_scales_ = np.array([_rms(held_out[name]) for name in names])
        grid = self._weight_grid(len(names)) / self.score_scales_[None, :]
        accuracy = np.array(
            [
                np.mean(
                    np.argmax(sum(w * held_out[n] for w, n in zip(weights, names)), axis=1)
                    == y_index
                )
                for weights in grid
            ]
        )
        # Ties are common (a plateau of equally accurate mixtures): take the plateau's
        # centre, not the grid's first point, so the choice does not hang on grid order.
        self.stream_weights_ = self._weight_grid(len(names))[accuracy == accuracy.max()].mean(
            axis=0
        )
        # Platt's sigmoids on the same out-of-fold fused scores: probabilities cost no fit.
        fused = sum(
            w / r * held_out[n] for w, r, n in zip(self.stream_weights_, self.score_scales_, names)
        )
        tasks = fused[:, 1:] if classes.shape[0] == 2 else fused
        self.probA_, self.probB_ = fit_sigmoids(tasks, y_index, classes.shape[0])
        self.estimators_ = {name: clone(base).fit(data[name], classes[y_index]) for name in names}
        self.streams_, self.classes_ = names, classes
        return self

    def _fused(self, X):
        """``sum_s w_s z_s / r_s`` as ``(n_videos, n_classes)``, two columns for two classes."""
        check_is_fitted(self, "stream_weights_")
        _, data = validate_streams(X, streams=self.streams_)
        return sum(
            w / r * _scores(self.estimators_[name], data[name])
            for w, r, name in zip(self.stream_weights_, self.score_scales_, self.streams_)
        )

    def decision_function(self, X):
        """Fused scores ``sum_s w_s z_s / r_s``.

        Parameters
        ----------
        X : mapping str -> sequence of (T_i, d_s) arrays, or sequence of mappings
            The streams of :meth:`fit`, in either form.

        Returns
        -------
        ndarray of shape (n_videos,) for two classes (positive favours ``classes_[1]``, as
        the per-stream estimators' and scikit-learn's), else (n_videos, n_classes)
        """
        scores = self._fused(X)
        return scores[:, 1] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : mapping str -> sequence of (T_i, d_s) arrays, or sequence of mappings
            The streams of :meth:`fit`, in either form.

        Returns
        -------
        ndarray of shape (n_videos,)
        """
        scores = self._fused(X)  # checks the fit before classes_ is read
        return self.classes_[np.argmax(scores, axis=1)]

    def _has_proba(self):
        # A model saved before probabilities existed has none: no predict_proba at all.
        if hasattr(self, "stream_weights_") and not hasattr(self, "probA_"):
            raise AttributeError("this late-fusion model was saved without probabilities")
        return True

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities: Platt's sigmoids of the fused one-vs-rest scores, fitted on
        the out-of-fold scores that chose the fusion weights (no extra fit).

        Each class's fused score ``f`` becomes ``1 / (1 + exp(probA_ * f + probB_))``; for
        two classes that is the probability of ``classes_[1]``, for more the sigmoids are
        divided by their sum (as ``CalibratedClassifierCV``). The most probable class may
        differ from :meth:`predict`'s.

        Parameters
        ----------
        X : mapping str -> sequence of (T_i, d_s) arrays, or sequence of mappings
            The streams of :meth:`fit`, in either form.

        Returns
        -------
        ndarray of shape (n_videos, n_classes)
            Columns in the order of ``classes_``; every row sums to 1.
        """
        scores = self.decision_function(X)
        return sigmoid_proba(scores, self.probA_, self.probB_, self.classes_.shape[0])

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """Log of ``predict_proba``.

        Parameters
        ----------
        X : mapping str -> sequence of (T_i, d_s) arrays, or sequence of mappings

        Returns
        -------
        ndarray of shape (n_videos, n_classes)
        """
        return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        """Input is videos of several streams, not a 2-D table: a mapping stream name ->
        list of ``(T_i, d_s)`` arrays, or per-video mappings; dense, finite, real."""
        return video_tags(super().__sklearn_tags__())
