"""DeepPyramidClassifier: a temporal pyramid network on cached frame features.

The end-to-end variant of the paper (Section 3.2): node descriptors are pooled inside the
network, the node weights ``beta`` are learned by back-propagation through a softmax
re-parametrisation (Eq. 5) together with a small head, and several streams are fused late
with learned weights ``w = softmax(w_hat)`` (Eq. 4). The layer is
:class:`~mkl_tp.deep.pool.TemporalPyramidPool`, the network :mod:`mkl_tp.deep.nets`, the
training loop :mod:`mkl_tp.deep.train`; fine-tuning the backbone (Eqs. 6-7) lives in
:mod:`mkl_tp.deep.finetune`.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._utils.devices import resolve_device
from .._utils.params import Interval, Kind, Options, check_parameters
from .._utils.persist import VersionedPickleMixin
from ..pyramid.descriptors import node_bounds
from ..pyramid.inputs import SINGLE_STREAM, validate_labels, validate_streams, video_tags
from .nets import PyramidNet, StreamHead
from .pool import MODES, TemporalPyramidPool
from .train import auto_epochs, seeded, train_network, validation_size

__all__ = ["DeepPyramidClassifier"]

# Below this many training videos, early_stopping="auto" trains on all of them (see the
# class docstring): a 10% split of fewer than 1000 videos holds under 100, too few for its
# loss to choose an epoch (benchmarks/bench_deep_small.py).
EARLY_STOPPING_MIN_VIDEOS = 1000
# Networks n_networks="auto" averages below EARLY_STOPPING_MIN_VIDEOS training videos (one
# from there up): on small sets one network's test accuracy depends on its initialisation
# by several points, the average of five far less (docs/deep.rst, docs/performance.rst).
SMALL_SET_NETWORKS = 5


def _frame_statistics(arrays):
    """Mean and scale (standard deviation, 1 where 0) of every feature over all frames.

    Standardising the frames standardises every node descriptor the same way (a descriptor
    is a weighted mean of frames with weights summing to 1).
    """
    count = sum(x.shape[0] for x in arrays)
    mean = sum(x.sum(axis=0) for x in arrays) / count
    std = np.sqrt(sum(np.square(x - mean).sum(axis=0) for x in arrays) / count)
    return mean, np.where(std > 0, std, 1.0)


def _standardise_nodes(psi, mean, scale, frames_per_node, chunk_bytes=2**26):
    """Standardise the training descriptors ``psi`` (``(N, P, d)``, already ``(raw - mean)
    / scale`` with the frames' ``mean`` and ``scale``) node by node, in place; return the
    raw descriptors' per-node mean and scale, ``(P, d)`` arrays for :func:`_descriptors`.

    A node's scale is ``sqrt(var + 1 / m)`` in the frames' units, ``m`` its mean number of
    frames (``frames_per_node``, ``(P,)``): ``1 / m`` is the variance a mean of ``m``
    independent unit-variance frames would have, so a feature that varies less than that
    over the videos (the whole-video mean of per-series normalised signals, constant up
    to rounding) is not blown up to unit variance. Statistics in float64, about
    ``chunk_bytes`` of videos at a time (``psi`` is the largest array of a fit).
    """
    n = psi.shape[0]
    chunk = max(1, chunk_bytes // (8 * psi.shape[1] * psi.shape[2]))
    parts = [slice(start, start + chunk) for start in range(0, n, chunk)]
    node_mean = sum(psi[part].double().sum(dim=0) for part in parts) / n
    variance = sum(psi[part].double().sub_(node_mean).square_().sum(dim=0) for part in parts) / n
    floor = 1.0 / torch.as_tensor(np.maximum(frames_per_node, 1.0), dtype=torch.float64)
    node_scale = (variance + floor[:, None]).sqrt()
    for part in parts:
        psi[part] = psi[part].double().sub_(node_mean).div_(node_scale).to(psi.dtype)
    return mean + scale * node_mean.numpy(), scale * node_scale.numpy()


def _descriptors(arrays, levels, device, mean, scale, dtype=torch.float32, chunk_bytes=2**26):
    """``(N, P, d)`` CPU tensor of standardised node descriptors ``(psi - mean) / scale``
    (``mean`` and ``scale`` of shape ``(d,)``, or ``(P, d)`` node by node).

    Computed in float64 chunks of about ``chunk_bytes`` of frames on ``device`` (one reused
    buffer: fresh allocations cost page faults on every chunk), stored in ``dtype``;
    standardising before the cast keeps bfloat16's 8 mantissa bits for the variation.
    """
    pool = TemporalPyramidPool(levels).to(device)
    mean = torch.as_tensor(mean, device=device)
    inverse_scale = torch.as_tensor(1.0 / scale, device=device)
    lengths = [x.shape[0] for x in arrays]
    bounds = np.cumsum(lengths) * arrays[0].shape[1] * 8 // chunk_bytes
    cuts = np.flatnonzero(np.diff(bounds)) + 1  # chunk starts, about chunk_bytes apart
    chunks = list(zip([0, *cuts], [*cuts, len(arrays)]))
    buffer = torch.empty(
        max(sum(lengths[a:b]) for a, b in chunks), arrays[0].shape[1], dtype=torch.float64
    )
    out = torch.empty(len(arrays), pool.n_nodes, arrays[0].shape[1], dtype=dtype)
    for first, last in chunks:
        frames = buffer[: sum(lengths[first:last])]
        np.concatenate(arrays[first:last], out=frames.numpy())  # into the reused buffer
        frames = frames.to(device)
        with torch.no_grad():
            psi = pool.node_descriptors(frames, lengths[first:last])
        out[first:last] = psi.sub_(mean).mul_(inverse_scale)
    return out


class DeepPyramidClassifier(VersionedPickleMixin, ClassifierMixin, BaseEstimator):
    """Temporal pyramid network on cached frame features, ``beta`` learned end to end.

    Each stream's videos are pooled over the ``2**levels - 1`` pyramid nodes; each node is
    reduced to ``node_dim`` by a shared FC, weighted by ``beta`` (``n_pyramids`` weight
    vectors, each on the simplex) and concatenated or averaged; FC + ReLU + BatchNorm fuses
    them to ``hidden`` and a linear layer gives class scores. Streams are fused late with
    learned weights. Trained with Adam on the L2-regularised cross-entropy (Eq. 4).

    Parameters
    ----------
    levels : int, default=4
        Pyramid levels (the same default as :class:`~mkl_tp.PyramidMKLClassifier`, so the two
        compare at equal settings; the paper goes to 6).
    mode : {"concat", "average"}, default="concat"
        Aggregation (*) or (**) of Eq. 1; concatenation is the paper's better variant.
    n_pyramids : int, default=1
        Pyramids per stream (Table 5).
    node_dim : int, default=128
        Per-node reduction (Table 5).
    hidden : int, default=128
        Width of the FC + ReLU + BatchNorm fusion layer (Table 5 reduces to 128).
    epochs : int or "auto", default="auto"
        Most passes over the training videos. ``"auto"``: 100, or more on a small set so that
        training takes at least ``MIN_STEPS`` (500) optimiser steps: with fewer videos than
        ``batch_size`` an epoch is one step, and 100 steps of Adam at ``lr=1e-3`` leave the
        network under-trained. From ``500 * batch_size / 100`` videos (320 at the default
        batch size) up it is 100, so large sets train as before.
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=1e-4
        L2 penalty (the paper's regularised loss, Section 3.2, footnote 5).
    batch_size : int, default=64
        Videos per step, ``>= 2`` (BatchNorm needs two). A last batch of one video joins the
        one before.
    n_networks : int or "auto", default="auto"
        Networks trained from different initialisations (and batch orders) and averaged:
        the class probabilities are the mean of theirs. ``"auto"``: 5 below
        ``EARLY_STOPPING_MIN_VIDEOS`` (1000) training videos, 1 from there up. With a few
        dozen videos one network's accuracy depends on its initialisation by several
        points; the average is steadier and usually more accurate, at five times the
        training time (docs/deep.rst).
    early_stopping : bool or "auto", default="auto"
        ``True``: hold out ``validation_fraction`` of the videos (stratified), stop when their
        loss has not improved by ``tol`` for ``n_iter_no_change`` epochs, and keep the best
        epoch's weights. ``False``: train on all videos for exactly ``epochs`` epochs.
        ``"auto"``: ``True`` from ``EARLY_STOPPING_MIN_VIDEOS`` (1000) training videos up,
        ``False`` below: on a small set the held-out part is a handful of videos whose loss
        picks the kept epoch by chance (often the first), and the videos it withholds are
        missed more than the stopping rule helps.
    validation_fraction : float, default=0.1
        Held-out share (at least one video per class).
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    tol : float, default=1e-4
        Least decrease of the validation loss that counts as an improvement.
    standardise : {"nodes", "frames"}, default="nodes"
        How the network's inputs are scaled. ``"nodes"``: every feature of every pyramid
        node centred on its mean over the training videos and divided by
        ``sqrt(var + s^2 / m)``, its variance over those videos plus the variance of a mean
        of ``m`` independent frames (``s`` the feature's standard deviation over all
        frames, ``m`` the node's mean number of frames), so that a feature nearly constant
        at a node (e.g. the whole-video mean of per-series normalised signals) is not blown
        up to unit variance. ``"frames"`` (the default before): every feature by its mean
        and standard deviation over all training frames, the same for all nodes; a node
        descriptor averages many frames, so the coarse nodes then vary far less than the
        fine ones and reach the network as small inputs (docs/deep.rst measures both).
    precision : {"float32", "bfloat16"}, default="float32"
        ``"bfloat16"`` stores the (standardised) descriptors in bfloat16 and trains under
        ``torch.autocast``: half the memory and, on GPUs and CPUs with AMX, several times
        faster, at about 3 significant digits on the inputs. Parameters, optimiser and
        prediction stay float32.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to compute; ``"auto"`` takes CUDA when available. Fitted weights are kept on
        the CPU, so pickles load anywhere.
    random_state : int, RandomState or None, default=None
        Seeds the initialisation, the validation split and the batch order; runs with the
        same seed on the CPU are identical.
    verbose : int, default=0
        Log each epoch at INFO level (DEBUG otherwise) through ``logging``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    beta_ : ndarray
        Node weights (the mean of the networks' weights when there are several), level-major,
        each pyramid on its own simplex: shape ``(P,)`` for one
        sequence input with ``n_pyramids=1`` (as :class:`~mkl_tp.PyramidMKLClassifier`),
        ``(n_pyramids, P)`` with more pyramids; for a mapping a leading ``n_streams`` axis.
        Unlike the shallow model, each stream's weights sum to 1;
        ``stream_weights_[:, None] * beta_`` is the shallow model's convention.
    stream_weights_ : ndarray of shape (n_streams,)
        ``w = softmax(w_hat)``, when fitted on a mapping.
    streams_ : list of str
        Stream names, when fitted on a mapping.
    n_features_in_ : int
        Frame feature dimension ``d`` (fits on a plain list of sequences).
    n_features_per_stream_ : dict
        Stream name (``None`` for a plain list of sequences) -> ``d``.
    loss_curve_ : list of float
        Mean training loss of every epoch (of the first network, as the next three).
    validation_loss_curve_ : list of float
        Held-out loss of every epoch (empty without early stopping).
    best_epoch_ : int
        Epoch (1-based) whose weights were kept.
    n_iter_ : int
        Epochs run.
    n_networks_ : int
        Networks averaged (``n_networks`` resolved).
    early_stopping_ : bool
        Whether a validation split stopped training (``early_stopping`` resolved).

    Notes
    -----
    Node descriptors of cached features do not change during training, so they are computed
    once per fit (in float64, then standardised with the training frames' mean and standard
    deviation); each epoch is then a few matrix products per batch. torch uses all cores by
    default; on a machine shared with other busy processes ``torch.set_num_threads(1)`` can
    be several times faster (see the deep variant's documentation page).

    Examples
    --------
    >>> from mkl_tp import DeepPyramidClassifier, load_basic_motions
    >>> train, test = load_basic_motions()
    >>> clf = DeepPyramidClassifier(levels=3, random_state=0).fit(train.X, train.y)
    >>> clf.beta_.shape
    (7,)
    """

    def __init__(
        self,
        *,
        levels=4,
        mode="concat",
        n_pyramids=1,
        node_dim=128,
        hidden=128,
        epochs="auto",
        lr=1e-3,
        weight_decay=1e-4,
        batch_size=64,
        n_networks="auto",
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        standardise="nodes",
        precision="float32",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.levels = levels
        self.mode = mode
        self.n_pyramids = n_pyramids
        self.node_dim = node_dim
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.n_networks = n_networks
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.standardise = standardise
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints = {
        "levels": [Interval(Integral, 1)],
        "mode": [Options(MODES)],
        "n_pyramids": [Interval(Integral, 1)],
        "node_dim": [Interval(Integral, 1)],
        "hidden": [Interval(Integral, 1)],
        "epochs": [Options(("auto",)), Interval(Integral, 1)],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        # BatchNorm needs two videos per step.
        "batch_size": [Interval(Integral, 2)],
        "n_networks": [Options(("auto",)), Interval(Integral, 1)],
        "early_stopping": [Options(("auto",)), Kind(bool, "a bool")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1)],
        "tol": [Interval(Real, 0, None, closed="left")],
        "standardise": [Options(("nodes", "frames"))],
        "precision": [Options(("float32", "bfloat16"))],
        "device": [Kind(str, "a torch device name")],
        "verbose": [Interval(Integral, 0), Kind(bool, "a bool")],
    }

    def _check_params(self):
        check_parameters(self, self._parameter_constraints)
        return resolve_device(self.device)

    def fit(self, X, y):
        """Train the pyramid network.

        Parameters
        ----------
        X : sequence of array-like of shape (T_i, d), or mapping str -> such a sequence
            Per-frame features of each video, as for :class:`~mkl_tp.PyramidMKLClassifier`;
            a mapping gives several streams (their ``d`` may differ), fused with learned
            weights. Several streams may also come video by video, as a sequence of
            mappings ``[{"rgb": (T_i, d) array, "flow": (T_i', d') array}, ...]`` (every
            video with the same stream names), which scikit-learn can index by video.
        y : array-like of shape (n_videos,)

        Returns
        -------
        self
        """
        device = self._check_params()
        names, data = validate_streams(X)
        classes, y_index = validate_labels(y, len(next(iter(data.values()))))
        random_state = check_random_state(self.random_state)
        self._standardise = {name: _frame_statistics(arrays) for name, arrays in data.items()}
        dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float32
        psis = [
            _descriptors(arrays, self.levels, device, *self._standardise[name], dtype)
            for name, arrays in data.items()
        ]
        if self.standardise == "nodes":
            bounds = node_bounds(self.levels)
            for (name, arrays), psi in zip(data.items(), psis):
                frames = np.mean([x.shape[0] for x in arrays]) * (bounds[:, 1] - bounds[:, 0])
                self._standardise[name] = _standardise_nodes(psi, *self._standardise[name], frames)
        small = y_index.shape[0] < EARLY_STOPPING_MIN_VIDEOS
        early_stopping = not small if self.early_stopping == "auto" else self.early_stopping
        n_networks = (
            (SMALL_SET_NETWORKS if small else 1) if self.n_networks == "auto" else self.n_networks
        )
        n_train = y_index.shape[0]
        if early_stopping:
            n_train -= validation_size(y_index, self.validation_fraction)
        nets, histories = [], []
        for _ in range(n_networks):
            # One draw per network, in turn: the first network is the one a single-network
            # fit with the same random_state trains.
            seed = random_state.randint(np.iinfo(np.int32).max)
            net, history = self._train_one(
                psis, y_index, classes, seed, n_train, early_stopping, device
            )
            nets.append(net.cpu().eval())
            histories.append(history)
        self._nets = nets
        self.n_networks_ = n_networks
        history = histories[0]
        self.n_features_per_stream_ = {name: arrays[0].shape[1] for name, arrays in data.items()}
        self.classes_ = classes
        beta = np.mean(
            [
                np.stack([head.pool.beta.detach().double().numpy() for head in net.heads])
                for net in nets
            ],
            axis=0,
        )
        if self.n_pyramids == 1:
            beta = beta[:, 0]
        if names is None:
            self.beta_ = beta[0]
            self.n_features_in_ = self.n_features_per_stream_[SINGLE_STREAM]
        else:
            self.streams_ = names
            self.beta_ = beta
            self.stream_weights_ = np.mean(
                [torch.softmax(net.stream_logits.detach().double(), dim=0).numpy() for net in nets],
                axis=0,
            )
        self.loss_curve_ = history.loss_curve
        self.validation_loss_curve_ = history.validation_loss_curve
        self.best_epoch_ = history.best_epoch
        self.n_iter_ = history.n_iter
        self.early_stopping_ = bool(early_stopping)
        return self

    def _train_one(self, psis, y_index, classes, seed, n_train, early_stopping, device):
        """One network, initialised and trained with ``seed`` on ``device``:
        ``(net, TrainHistory)``."""
        with seeded(seed):
            net = PyramidNet(
                [
                    StreamHead(
                        psi.shape[2],
                        classes.shape[0],
                        self.levels,
                        self.mode,
                        self.n_pyramids,
                        node_dim=self.node_dim,
                        hidden=self.hidden,
                    )
                    for psi in psis
                ]
            )
        history = train_network(
            net.to(device),
            psis,
            torch.from_numpy(y_index),
            epochs=auto_epochs(n_train, self.batch_size) if self.epochs == "auto" else self.epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            validation_fraction=self.validation_fraction if early_stopping else None,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            seed=seed,
            precision=self.precision,
            verbose=self.verbose,
            class_names=classes,
        )
        return net, history

    def predict_log_proba(self, X, batch_size=1024):
        """Log of the fused class probabilities ``log sum_s w_s softmax(logits_s)``.

        Parameters
        ----------
        X : sequence of (T_i, d) arrays, or streams (a mapping or a sequence of per-video
            mappings) as in :meth:`fit`
        batch_size : int, default=1024
            Videos per forward pass.

        Returns
        -------
        ndarray of shape (n_videos, n_classes)
        """
        check_is_fitted(self, "beta_")
        device = resolve_device(self.device)
        _, data = validate_streams(
            X, streams=getattr(self, "streams_", None), n_features=self.n_features_per_stream_
        )
        psis = [
            _descriptors(arrays, self.levels, device, *self._standardise[name])
            for name, arrays in data.items()
        ]
        # Models saved before n_networks hold one network, as _net.
        nets = getattr(self, "_nets", None) or [self._net]
        out = []
        try:
            for net in nets:
                net.to(device)
            with torch.no_grad():
                for start in range(0, psis[0].shape[0], batch_size):
                    batch = [psi[start : start + batch_size].to(device) for psi in psis]
                    logs = torch.stack([net(batch).double() for net in nets])
                    # log of the networks' mean probability
                    out.append((torch.logsumexp(logs, dim=0) - np.log(len(nets))).cpu())
        finally:
            for net in nets:
                net.cpu()
        return torch.cat(out).numpy()

    def predict_proba(self, X):
        """Fused class probabilities, shape ``(n_videos, n_classes)``; rows sum to 1."""
        return np.exp(self.predict_log_proba(X))

    def decision_function(self, X):
        """Class scores: log-probabilities, or ``log p_1 - log p_0`` for two classes; the
        shapes of :meth:`mkl_tp.PyramidMKLClassifier.decision_function` (one column for two
        classes, positive favouring ``classes_[1]``)."""
        scores = self.predict_log_proba(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """Most probable label of every video, shape ``(n_videos,)``."""
        scores = self.predict_log_proba(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def __setstate__(self, state):
        # Models saved before n_networks and standardise: one network (as _net), inputs
        # scaled by the frames' statistics; get_params and clone then describe them.
        state = dict(state)
        if "_net" in state:
            state.setdefault("n_networks", 1)
        state.setdefault("standardise", "frames")
        super().__setstate__(state)

    def __sklearn_tags__(self):
        """Input is videos, not a 2-D table: a list of ``(T_i, d)`` arrays or per-video
        mappings of streams; dense, finite, real."""
        return video_tags(super().__sklearn_tags__())
