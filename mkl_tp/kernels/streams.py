"""Node features of one stream, a chunk of videos at a time (the estimator's data path).

frames -> node descriptors -> per-node normalisation -> base-kernel feature map -> per-node
PCA, written into one ``(N, P, k)`` array. The fitted steps (feature map, PCA) are fitted
on a sample of the training videos (:func:`fit_sample`), so the memory of a fit is the
reduced features ``N P k`` plus one chunk and the sample, never ``N P d`` nor all frames
(docs/performance.rst, "Out of core"). Input may be a list of ``(T_i, d)`` arrays or a
:class:`~mkl_tp.store.FeatureSequence` read from a cache.
"""

import numpy as np

from .._utils.memory import release_free_memory
from .._utils.sampling import stratified_subset
from ..pyramid.descriptors import n_nodes, node_descriptors_batch
from ..store import FeatureSequence
from .feature_maps import (
    apply_feature_maps,
    fit_feature_maps,
    normalize_nodes,
    unit_diagonal_scales,
)
from .node_pca import apply_node_projections, fit_node_projections

__all__ = [
    "fit_sample",
    "fit_reduction",
    "stream_descriptors",
    "reduce_nodes",
    "stream_features",
    "fit_stream_blocks",
    "stream_blocks",
]

# Bytes of float64 node descriptors per chunk of videos (the frames' own chunking inside
# node_descriptors_batch uses the same bound): 64 MiB keeps the temporaries under 1 GiB.
CHUNK_BYTES = 2**26


def fit_sample(y_index, size):
    """Indices of the training videos that fit the feature maps and the PCA.

    Every video when ``size`` is ``None`` or at least ``N``; else about ``size`` videos,
    the same fraction of each class, evenly spaced in their order (deterministic).
    """
    n_videos = len(y_index)
    if size is None or n_videos <= size:
        return np.arange(n_videos)
    return stratified_subset(y_index, size)


def fit_reduction(
    arrays,
    sample,
    *,
    levels,
    norm,
    dtype,
    base_kernel,
    n_components,
    gamma,
    pca_components,
    seeds,
    shared_pca=False,
):
    """Fit one stream's feature map and per-node PCA on the videos at ``sample``.

    ``seeds`` = ``(feature map seed, PCA seed)``; ``shared_pca``: one projection for all
    nodes (the cross kernel's common basis). Returns ``(feature_map, projections,
    phi)``: ``phi`` the reduced features of the sample when it is every video (the fit
    then needs no second pass), else ``None``. When nothing is fitted (linear base kernel,
    no PCA) no descriptors are computed here.
    """
    if base_kernel == "linear" and pca_components is None and sample.size < len(arrays):
        return None, None, None
    psi = stream_descriptors(arrays, sample, levels, norm, dtype)
    feature_map = fit_feature_maps(
        psi, base_kernel, n_components=n_components, gamma=gamma, random_state=seeds[0]
    )
    phi = apply_feature_maps(psi, feature_map)
    del psi
    projections = (
        None
        if pca_components is None
        else fit_node_projections(phi, pca_components, random_state=seeds[1], shared=shared_pca)
    )
    if sample.size < len(arrays):
        del phi
        release_free_memory()  # the sample's descriptors (docs/performance.rst)
        return feature_map, projections, None
    return feature_map, projections, reduce_nodes(phi, None, projections)


def _take(arrays, index):
    """The sequences at ``index``: one read of a cache, or a list of the arrays."""
    if isinstance(arrays, FeatureSequence):
        return arrays[index]
    return [arrays[i] for i in index]


def _n_features(arrays):
    if isinstance(arrays, FeatureSequence):
        return arrays.n_features
    return np.shape(arrays[0])[1]


def _chunks(index, levels, d):
    step = max(1, CHUNK_BYTES // (n_nodes(levels) * d * 8))
    for start in range(0, len(index), step):
        yield start, index[start : start + step]


def stream_descriptors(arrays, index, levels, norm, dtype):
    """Normalised node descriptors ``(len(index), P, d)`` of the videos at ``index``.

    Read and pooled a chunk of videos at a time; every entry is what
    ``normalize_nodes(node_descriptors_batch(...))`` gives on all of them at once.
    """
    out = np.empty((len(index), n_nodes(levels), _n_features(arrays)), dtype=dtype)
    for start, part in _chunks(index, levels, out.shape[2]):
        view = out[start : start + len(part)]
        node_descriptors_batch(_take(arrays, part), levels, chunk_bytes=CHUNK_BYTES, out=view)
        normalize_nodes(view, norm, copy=False)
    return out


def reduce_nodes(psi, feature_map, projections):
    """Feature map, then per-node PCA (``projections`` may be ``None``)."""
    phi = apply_feature_maps(psi, feature_map)
    return phi if projections is None else apply_node_projections(phi, projections)


def stream_features(arrays, levels, norm, dtype, feature_map, projections):
    """Node features ``(N, P, k)`` of every video in ``dtype``, a chunk at a time.

    Parameters
    ----------
    arrays : list of ndarray (T_i, d) or FeatureSequence
    levels : int
    norm : {"none", "l2", "power"}
    dtype : dtype
        Storage of the output (and of the descriptors of a chunk).
    feature_map : fitted transformer or None
        :func:`~mkl_tp.kernels.fit_feature_maps`.
    projections : ndarray of shape (P, m, k) or None
        :func:`~mkl_tp.kernels.node_pca.fit_node_projections`.

    Returns
    -------
    ndarray of shape (N, P, k)
    """
    index = np.arange(len(arrays))
    out = None
    for start, part in _chunks(index, levels, _n_features(arrays)):
        psi = stream_descriptors(arrays, part, levels, norm, dtype)
        phi = reduce_nodes(psi, feature_map, projections)
        del psi
        if out is None:
            out = np.empty((len(index),) + phi.shape[1:], dtype=dtype)
        out[start : start + len(part)] = phi
    release_free_memory()  # the chunks' descriptors
    return out


def _scaled(phi, scales, dtype):
    """``phi`` in ``dtype`` with node ``p`` divided by ``sqrt(scales[p])`` (in place)."""
    if phi.dtype != dtype:
        phi = phi.astype(dtype)
    phi /= np.sqrt(scales).astype(dtype)[None, :, None]
    return phi


def fit_stream_blocks(
    data,
    y_index,
    *,
    levels,
    norm,
    dtype,
    base_kernel,
    n_components,
    gamma,
    pca_components,
    subsample,
    shared_pca,
    random_state,
):
    """Fit each stream's feature map, PCA and node scales; its scaled node blocks.

    Parameters
    ----------
    data : mapping of str to sequence of (T_i, d) arrays
    y_index : ndarray of shape (N,) or None
        Class indices; the fitting sample (:func:`fit_sample`) is stratified by them.
    random_state : numpy.random.RandomState
        Two seeds are drawn per stream in a fixed order, whatever is fitted, so one
        ``random_state`` gives one model.

    Returns
    -------
    blocks : list of ndarray, each (N, P, m_s)
        Node blocks scaled so that every node kernel has unit mean diagonal.
    feature_maps, projections, scales : dict of str
        Per stream, for :func:`stream_blocks` on new videos.
    """
    blocks, feature_maps, projections, scales = [], {}, {}, {}
    for name, arrays in data.items():
        seeds = (
            random_state.randint(np.iinfo(np.int32).max),
            None if pca_components is None else random_state.randint(np.iinfo(np.int32).max),
        )
        sample = fit_sample(np.zeros(len(arrays), int) if y_index is None else y_index, subsample)
        feature_maps[name], projections[name], phi = fit_reduction(
            arrays,
            sample,
            base_kernel=base_kernel,
            n_components=n_components,
            gamma=gamma,
            pca_components=pca_components,
            seeds=seeds,
            shared_pca=shared_pca,
            levels=levels,
            norm=norm,
            dtype=dtype,
        )
        if phi is None:
            phi = stream_features(
                arrays, levels, norm, dtype, feature_maps[name], projections[name]
            )
        scales[name] = unit_diagonal_scales(phi)
        blocks.append(_scaled(phi, scales[name], dtype))
    return blocks, feature_maps, projections, scales


def stream_blocks(data, feature_maps, projections, scales, *, levels, norm, dtype):
    """Scaled node blocks of new videos with the maps fitted by :func:`fit_stream_blocks`."""
    return [
        _scaled(
            stream_features(arrays, levels, norm, dtype, feature_maps[name], projections[name]),
            scales[name],
            dtype,
        )
        for name, arrays in data.items()
    ]
