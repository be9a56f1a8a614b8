"""Node features a chunk of videos at a time, and the feature maps and PCA on a sample."""

import numpy as np
import pytest
from _problems import videos

from mkl_tp import PyramidMKLClassifier
from mkl_tp.kernels import streams
from mkl_tp.kernels.feature_maps import fit_feature_maps, normalize_nodes
from mkl_tp.kernels.node_pca import apply_node_projections, fit_node_projections
from mkl_tp.kernels.streams import fit_sample, stream_descriptors, stream_features
from mkl_tp.pyramid.descriptors import node_descriptors_batch
from mkl_tp.store import FeatureSequence, FeatureWriter


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few videos (levels 3, d 6: 7 * 6 * 8 bytes per video -> 5 videos)."""
    monkeypatch.setattr(streams, "CHUNK_BYTES", 5 * 7 * 6 * 8)


def test_chunks_give_what_all_videos_at_once_give(small_chunks):
    X, _ = videos(n=23, d=6)
    psi = normalize_nodes(node_descriptors_batch(X, 3), "power")
    chunked = stream_descriptors(X, np.arange(23), 3, "power", np.float64)
    np.testing.assert_array_equal(chunked, psi)
    feature_map = fit_feature_maps(psi, "rbf", n_components=10, random_state=0)
    projections = fit_node_projections(
        feature_map.transform(psi.reshape(-1, 6)).reshape(23, 7, 10), 4, random_state=0
    )
    reference = apply_node_projections(
        np.stack([feature_map.transform(psi[:, p]) for p in range(7)], axis=1), projections
    )
    features = stream_features(X, 3, "power", np.float64, feature_map, projections)
    np.testing.assert_allclose(features, reference, rtol=1e-12, atol=1e-14)
    narrow = stream_features(X, 3, "power", np.float32, feature_map, projections)
    assert narrow.dtype == np.float32
    np.testing.assert_allclose(narrow, reference, rtol=1e-5, atol=1e-6)


def test_fit_sample_is_every_video_up_to_its_size_then_stratified():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    np.testing.assert_array_equal(fit_sample(y, None), np.arange(100))
    np.testing.assert_array_equal(fit_sample(y, 100), np.arange(100))
    sample = fit_sample(y, 20)
    np.testing.assert_array_equal(np.bincount(y[sample]), [12, 6, 2])
    np.testing.assert_array_equal(sample, np.unique(sample))  # sorted, no repeats
    np.testing.assert_array_equal(fit_sample(y, 20), sample)  # deterministic


@pytest.mark.parametrize(
    "settings", [dict(pca_components=3), dict(kernel="cross", n_components=20, pca_components=4)]
)
def test_a_sample_of_every_video_leaves_the_fit_unchanged(settings):
    X, y = videos(n=48, d=6)
    exact = PyramidMKLClassifier(levels=3, random_state=0, subsample=None, **settings).fit(X, y)
    same = PyramidMKLClassifier(levels=3, random_state=0, subsample=48, **settings).fit(X, y)
    np.testing.assert_array_equal(same.beta_, exact.beta_)
    np.testing.assert_array_equal(same.decision_function(X), exact.decision_function(X))


def _embedded(X, d, seed):
    """The videos mapped into ``d`` dimensions, plus a little noise: nodes of rank ~4."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(X[0].shape[1], d))
    return [x @ mixing + 0.05 * rng.normal(size=(len(x), d)) for x in X]


def test_pca_on_a_sample_is_close_to_pca_on_every_video(small_chunks):
    X, y = videos(n=600, d=4, seed=1)
    X_test, y_test = videos(n=300, d=4, seed=2)
    X, X_test = _embedded(X, 16, 0), _embedded(X_test, 16, 0)
    fits = {
        size: PyramidMKLClassifier(
            levels=3, pca_components=4, subsample=size, random_state=0, mkl_norm=1
        ).fit(X, y)
        for size in (None, 200)
    }
    exact, sampled = fits[None].node_projections_[None], fits[200].node_projections_[None]
    for p in range(exact.shape[0]):
        # Sine of the largest principal angle between the two subspaces.
        gap = np.linalg.norm(exact[p] @ exact[p].T - sampled[p] @ sampled[p].T, ord=2)
        assert gap < 0.05, f"node {p}: subspaces {gap:.3f} apart"
    accuracy = {size: fit.score(X_test, y_test) for size, fit in fits.items()}
    assert accuracy[200] == pytest.approx(accuracy[None], abs=0.02)
    assert accuracy[None] > 0.8


def test_a_feature_sequence_fits_and_predicts_like_its_arrays(tmp_path, small_chunks):
    X, y = videos(n=40, d=6)
    path = tmp_path / "cache.h5"
    with FeatureWriter(path, {"stream": "rgb", "dtype": "float32"}, durable=False) as writer:
        for i, x in enumerate(X):
            writer.write(f"v{i:03d}", x)
    ids = [f"v{i:03d}" for i in range(40)]
    stored = [x.astype(np.float32) for x in X]
    settings = dict(levels=3, pca_components=4, subsample=30, random_state=0, mkl_norm=1)
    in_memory = PyramidMKLClassifier(**settings).fit(stored, y)
    on_disk = PyramidMKLClassifier(**settings).fit(FeatureSequence(path, ids), y)
    np.testing.assert_array_equal(on_disk.beta_, in_memory.beta_)
    np.testing.assert_array_equal(
        on_disk.decision_function(FeatureSequence(path, ids[:9])),
        in_memory.decision_function(stored[:9]),
    )
    assert on_disk.n_features_in_ == 6


@pytest.mark.filterwarnings("ignore:kernel='cross' scored")
def test_the_cross_check_on_a_subset_of_a_feature_sequence_is_that_of_its_arrays(tmp_path):
    # The cross fit judges itself against the linear kernel on selection_videos of the
    # videos: cut from the cache (ids) as from the list.
    X, y = videos(n=40, d=6)
    path = tmp_path / "cache.h5"
    with FeatureWriter(path, {"stream": "rgb", "dtype": "float32"}, durable=False) as writer:
        for i, x in enumerate(X):
            writer.write(f"v{i:03d}", x)
    stored = [x.astype(np.float32) for x in X]
    settings = dict(levels=2, kernel="cross", selection_videos=24, random_state=0)
    in_memory = PyramidMKLClassifier(**settings).fit(stored, y)
    on_disk = PyramidMKLClassifier(**settings).fit(
        FeatureSequence(path, [f"v{i:03d}" for i in range(40)]), y
    )
    assert in_memory.linear_kernel_score_ is not None
    assert on_disk.linear_kernel_score_ == in_memory.linear_kernel_score_
    assert on_disk.cross_kernel_score_ == in_memory.cross_kernel_score_


def test_a_feature_sequence_of_another_d_is_named_at_predict(tmp_path):
    X, y = videos(n=12, d=3)
    path = tmp_path / "wide.h5"
    with FeatureWriter(path, {"stream": "rgb"}, durable=False) as writer:
        writer.write("v0", np.ones((4, 5)))
    model = PyramidMKLClassifier(levels=2, mkl_norm=1).fit(X, y)
    with pytest.raises(ValueError, match=r"wide\.h5 has d=5 features, expected d=3"):
        model.predict(FeatureSequence(path))
