"""The cells of a ``python -m mkl_tp.fit`` sweep: the model of a cell, its ``C`` (and lp
norm) by cross-validation, fitting it into a report cell, and the loop over the cells.

Every function takes plain values (keyword arguments); :mod:`mkl_tp.fit` parses the command
line into them. scikit-learn, the estimator and torch are imported when a model is made.
"""

import time
import warnings

import numpy as np

from .._utils.cli import UserError
from .._utils.params import without_cross_check
from .._utils.sampling import stratified_folds
from .cells import add_gains
from .inputs import check_frame_streams, load_stream, match_split, split_overlap
from .options import frames_of
from .report import UNIFORM

__all__ = [
    "COLUMNS",
    "C_GRID",
    "DEEP_COLUMNS",
    "columns_and_saved",
    "cv_folds",
    "fit_cell",
    "fit_cells",
    "load_data",
    "make_model",
    "pending_cells",
    "searches_norm",
    "select_C",
]

COLUMNS = (UNIFORM, "linear", "cross")
DEEP_COLUMNS = ("deep-concat", "deep-average")
C_GRID = (0.1, 1.0, 10.0, 100.0)
N_FOLDS = 3


# -- one cell ---------------------------------------------------------------------------
def _subset(X, index):
    if isinstance(X, dict):
        return {name: [seqs[i] for i in index] for name, seqs in X.items()}
    return [X[i] for i in index]


def make_model(
    config,
    column,
    level,
    *,
    C,
    kernel="linear",
    node_norm="l2",
    tol=1e-3,
    max_iter=100,
    n_jobs=-1,
    seed=0,
    base_kernel=None,
    pyramids=None,
    mkl_norm=None,
    dask=None,
    deep_pyramids=1,
    deep_networks="auto",
    selection_videos=None,
):
    """The unfitted model of one cell: ``column`` (uniform, linear, cross or a deep column)
    at pyramid depth ``level``, wrapped in late fusion when ``config`` is ``"late"``.

    ``base_kernel``, ``pyramids``, ``mkl_norm`` and ``selection_videos`` left ``None`` keep
    the estimator's defaults (its ``"auto"`` rules); ``kernel`` is the uniform column's
    node combination; ``dask`` (a scheduler address) fits with the primal solver on that
    cluster; ``deep_pyramids`` and ``deep_networks`` are a deep column's ``n_pyramids`` and
    ``n_networks``.
    """
    from ..fusion import LateFusionClassifier

    if column in DEEP_COLUMNS:
        from ..deep import DeepPyramidClassifier

        base = DeepPyramidClassifier(
            levels=level,
            mode=column.split("-")[1],
            n_pyramids=deep_pyramids,
            n_networks=deep_networks,
            random_state=seed,
        )
        return LateFusionClassifier(base, random_state=seed) if config == "late" else base
    from ..estimator import PyramidMKLClassifier

    given = {
        "base_kernel": base_kernel,
        "pyramids": pyramids,
        "mkl_norm": mkl_norm,
        "selection_videos": selection_videos,
    }
    extra = {k: v for k, v in given.items() if v is not None}
    if dask:
        extra.update(solver="primal", dask=dask)
    base = PyramidMKLClassifier(
        levels=level,
        kernel=kernel if column == UNIFORM else column,
        node_norm=node_norm,
        C=C,
        tol=tol,
        max_iter=max_iter,
        node_weights="uniform" if column == UNIFORM else "learn",
        n_jobs=n_jobs,
        random_state=seed,
        **extra,
    )
    return LateFusionClassifier(base, random_state=seed) if config == "late" else base


def cv_folds(y, seed):
    """The sweep's folds: :func:`~mkl_tp._utils.sampling.stratified_folds`, 3 of them,
    shuffled by ``seed`` (the estimator's own ``"auto"`` norm uses the same folds unshuffled).
    """
    return stratified_folds(y, N_FOLDS, random_state=seed)


def searches_norm(column, mkl_norm):
    """Whether ``C="auto"`` searches the lp norm jointly with C: for learned linear weights
    whose norm is left to the estimator (``None``) or ``"auto"``."""
    return column == "linear" and mkl_norm in (None, "auto")


def select_C(X, y, build, *, seed=0, search_norm=False):
    """``(C, mkl_norm, record)`` by cross-validation (:func:`cv_folds`) on the training videos.

    ``build(C, mkl_norm)`` makes an unfitted model. C is the grid value of the best
    out-of-fold accuracy (the first of ties). With ``search_norm`` the search is joint:
    every candidate norm gets its best C, and the norms are compared as the estimator's own
    ``"auto"`` compares them, by the one-standard-error rule towards uniform weights
    (:func:`~mkl_tp.solvers.selection.one_standard_error_choice`). Without, ``mkl_norm`` is
    ``None`` (the cell keeps its own setting). ``record`` says what was decided: every
    candidate's C and out-of-fold accuracy, the choice and why
    (:func:`~mkl_tp.solvers.selection.describe_choice`), and the seconds it took.
    """
    from ..solvers.selection import (
        MKL_NORM_CANDIDATES,
        describe_choice,
        norm_label,
        one_standard_error_choice,
    )

    start = time.perf_counter()
    folds = cv_folds(y, seed)
    norms = MKL_NORM_CANDIDATES if search_norm else (None,)
    best = {}
    for norm in norms:
        correct = {}
        for C in C_GRID:
            right = np.zeros(len(y), dtype=bool)
            for train, test in folds:
                model = build(C, norm)
                with without_cross_check():
                    model.fit(_subset(X, train), y[train])
                right[test] = model.predict(_subset(X, test)) == y[test]
            correct[C] = right
        C = max(C_GRID, key=lambda c: (correct[c].mean(), -C_GRID.index(c)))
        best[norm] = (C, correct[C])
    right = {n: r for n, (_, r) in best.items()}
    norm = one_standard_error_choice(right, norms, n_folds=len(folds))
    record = {"C": {norm_label(n) if search_norm else "given": c for n, (c, _) in best.items()}}
    if search_norm:
        scores = {n: r.mean() for n, r in right.items()}
        record.update(describe_choice(scores, norms, norm, right, n_folds=len(folds)))
    else:
        record["cv_accuracy"] = round(float(best[None][1].mean()), 4)
        record["n_videos"] = int(best[None][1].size)  # judged out of fold
    record["seconds"] = round(time.perf_counter() - start, 3)
    return best[norm][0], norm, record


def _chosen(model):
    """What a fitted PyramidMKLClassifier's "auto" options became, and why: the lp norm only
    where it acts (learned linear weights; the normalised cross kernel ignores it)."""
    from ..solvers.selection import (
        BASE_KERNEL_CANDIDATES,
        Depth,
        describe_choice,
        norm_candidates,
        score_key,
    )

    chosen = {"base_kernel": model.base_kernel_, "pyramids": model.pyramids_}
    if model.base_kernel_scores_:
        chosen["base_kernel_selection"] = {
            **describe_choice(
                model.base_kernel_scores_,
                BASE_KERNEL_CANDIDATES,
                model.base_kernel_,
                label=str,
                name="base kernel ",
            ),
            "seconds": round(model.base_kernel_seconds_, 3),
        }
    # Models saved before the check of the fitted weights lack its attributes.
    if getattr(model, "cross_kernel_score_", None) is not None:
        cross, linear = model.cross_kernel_score_, model.linear_kernel_score_
        chosen["linear_kernel_check"] = {
            "cross_kernel": round(cross, 4),
            "linear_kernel": round(linear, 4),
            "linear_kernel_better": bool(model.linear_kernel_better_),
            "decision": (
                "kernel='linear' better by more than one standard error than the cross "
                "kernel with its fitted weights: Eq. 2 averages the nodes of a level, blind "
                "to their order"
                if model.linear_kernel_better_
                else "the cross kernel with its fitted weights not beaten by kernel='linear' "
                "by one standard error"
            ),
            "seconds": round(model.linear_check_seconds_, 3),
        }
    if model.kernel == "linear" and model.mkl_norm_ is not None:
        chosen["mkl_norm"] = model.mkl_norm_
        if model.depth_ < model.levels:
            chosen["depth"] = model.depth_
        if model.mkl_norm_scores_:
            kept = Depth(model.depth_) if model.depth_ < model.levels else model.mkl_norm_
            judged = [
                c for c in norm_candidates(model.levels) if score_key(c) in model.mkl_norm_scores_
            ]
            scores = {c: model.mkl_norm_scores_[score_key(c)] for c in judged}
            chosen["mkl_norm_selection"] = {
                **describe_choice(scores, judged, kept),
                "seconds": round(model.mkl_norm_seconds_, 3),
            }
    return chosen


def _stream_weights(beta):
    """Per-stream sums of shared weights, or their mean over the classes of per-class ones."""
    sums = np.asarray(beta).sum(axis=-1)
    return sums if sums.ndim == 1 else sums.mean(axis=0)


def fit_cell(config, column, level, data, *, C, seed=0, mkl_norm=None, **options):
    """Fit one cell on ``data`` (:func:`load_data`) and test it: ``(model, cell)``.

    ``C`` is a number or ``"auto"`` (:func:`select_C`); ``seed``, ``mkl_norm`` and
    ``options`` are :func:`make_model`'s. ``cell`` is report.json's record of it.
    """
    from ..fusion import LateFusionClassifier
    from .report import classification_metrics

    X_train, y_train = data["train"][config], data["y_train"]

    def build(C, norm=None):
        norm = mkl_norm if norm is None else norm  # a norm chosen with C replaces the given
        return make_model(config, column, level, C=C, seed=seed, mkl_norm=norm, **options)

    chosen_norm, selection = None, None
    if column in DEEP_COLUMNS:
        C = None  # the network has no box constraint
    elif C == "auto":
        search = searches_norm(column, mkl_norm)
        C, chosen_norm, selection = select_C(X_train, y_train, build, seed=seed, search_norm=search)
    model = build(C, chosen_norm)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    predicted = model.predict(data["test"][config])
    cell = {
        "C": C,
        **({} if selection is None else {"selection": selection}),
        "fit_seconds": round(seconds, 3),
        **classification_metrics(data["y_test"], predicted, model.classes_),
    }
    if isinstance(model, LateFusionClassifier):
        cell["stream_weights"] = dict(zip(model.streams_, model.stream_weights_.tolist()))
        cell["beta"] = [model.estimators_[s].beta_.tolist() for s in model.streams_]
        if column not in DEEP_COLUMNS:  # every stream's model follows the same rules
            cell.update(_chosen(model.estimators_[model.streams_[0]]))
    elif column in DEEP_COLUMNS:
        cell.update(
            beta=np.asarray(model.beta_).tolist(),
            n_networks=model.n_networks_,
            standardise=model.standardise,
            n_iter=model.n_iter_,
            loss_curve=model.loss_curve_,
        )
        if config == "joint":
            cell["stream_weights"] = dict(zip(model.streams_, model.stream_weights_.tolist()))
    else:
        cell.update(
            beta=np.atleast_2d(model.beta_).tolist(),
            **_chosen(model),
            n_iter=model.n_iter_,
            objective=model.objective_,
            converged=model.converged_,
        )
        if config == "joint":
            cell["stream_weights"] = dict(
                zip(model.streams_, _stream_weights(model.beta_).tolist())
            )
    return model, cell


# -- the sweep --------------------------------------------------------------------------
def load_data(described, split, *, max_level, fusion="joint", allow_overlap=False, frames=None):
    """Every stream's train and test sequences, and the configurations to fit.

    Returns ``(data, configs)``: ``data`` holds ``y_train``, ``y_test``, per subset one
    entry per stream (and, for two streams, one named ``fusion`` holding both) and
    ``overlap``, the videos in both train and test (empty unless ``allow_overlap``: a split
    with any is refused otherwise, :func:`mkl_tp.experiment.inputs.match_split`, and
    accepted with a warning naming them); ``configs`` are the streams, then ``fusion`` for
    two. ``frames`` maps ``train`` and ``test`` to the frames kept per video, ``all``, a
    count, or a count per stream (:func:`mkl_tp.experiment.options.frames`): the paper's
    sampling strategies (its Table 6).
    """
    frames = frames or {}
    streams = [d["stream"] for d in described]
    for subset, spec in frames.items():
        check_frame_streams(spec, streams, f"--{subset}-frames")
    # Streams may differ in frame counts for a video: pyramid nodes live in normalised time,
    # so they stay aligned without resampling.
    unseen = sorted(set(split.test_labels) - set(split.train_labels))
    if unseen:
        raise UserError(f"test labels never seen in training: {unseen[:5]}")
    data = {
        "y_train": np.array(split.train_labels),
        "y_test": np.array(split.test_labels),
        "train": {},
        "test": {},
        "overlap": [],
    }
    subsets = {"train": split.train_ids, "test": split.test_ids}
    for entry in described:
        # one error naming what both subsets miss, or the videos in both
        matched = match_split(entry["path"], subsets, allow_overlap=allow_overlap)
        data["overlap"] = data["overlap"] or split_overlap(matched)
        for subset, ids in subsets.items():
            count = frames_of(frames.get(subset, "all"), entry["stream"])
            data[subset][entry["stream"]] = load_stream(
                entry["path"], ids, max_level, subset=subset, frames=count
            )
    if data["overlap"]:
        count, shown = len(data["overlap"]), ", ".join(data["overlap"][:5])
        warnings.warn(
            f"{count} video{'s are' if count != 1 else ' is'} in both train and test, "
            f"allowed: {shown}{', ...' if count > 5 else ''}; the test accuracy counts videos "
            "the model was trained on",
            stacklevel=2,
        )
    if len(streams) > 1:
        for subset in ("train", "test"):
            data[subset][fusion] = {s: data[subset][s] for s in streams}
    configs = streams + ([fusion] if len(streams) > 1 else [])
    return data, configs


def columns_and_saved(model, kernel):
    """The table's columns for ``model`` (``"mkl"`` or ``"deep"``) and the saved model's."""
    columns = COLUMNS + (DEEP_COLUMNS if model == "deep" else ())
    saved = kernel if model == "mkl" else {"linear": "deep-concat", "cross": "deep-average"}[kernel]
    return columns, saved


def pending_cells(cells, levels, configs, columns, saved):
    """``(level, config, column)`` of the cells not in ``cells``, then the saved model's
    (the deepest level, the last configuration), which is always refitted."""
    final = (max(levels), configs[-1], saved)
    todo = [
        (lv, cf, col)
        for lv in levels
        for cf in configs
        for col in columns
        if (lv, cf, col) != final and col not in cells.get(str(lv), {}).get(cf, {})
    ]
    return todo + [final]


class _NoProgress:
    def start(self, level, config, column):
        pass

    def done(self):
        pass


def fit_cells(todo, data, cells, *, save=None, progress=None, **options):
    """Fit the cells of ``todo`` into ``cells`` (level -> config -> column -> cell).

    After each cell, the learned cells' gains over uniform are updated and ``save()`` (when
    given) is called, so an interruption keeps the finished cells; ``progress`` has
    ``start(level, config, column)`` and ``done()``
    (:class:`~mkl_tp.experiment.cells.SweepProgress`). ``options`` are :func:`fit_cell`'s.
    Returns the model of the last cell.
    """
    progress = progress or _NoProgress()
    model = None
    for level, config, column in todo:
        progress.start(level, config, column)
        model, cell = fit_cell(config, column, level, data, **options)
        cells.setdefault(str(level), {}).setdefault(config, {})[column] = cell
        add_gains(cells)
        if save is not None:
            save()
        progress.done()
    return model
