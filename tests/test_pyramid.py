"""Pyramid geometry and node descriptors against brute-force overlap integrals."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mkl_tp.pyramid.descriptors import (
    n_nodes,
    node_bounds,
    node_descriptors,
    node_descriptors_batch,
    node_index,
    node_level,
    overlap_weights,
)


def brute_force_descriptors(X, levels):
    """Overlap-weighted means with exact rational overlaps, frame by frame."""
    T = X.shape[0]
    out = []
    for level in range(1, levels + 1):
        for k in range(1, 2 ** (level - 1) + 1):
            a, b = Fraction(k - 1, 2 ** (level - 1)), Fraction(k, 2 ** (level - 1))
            total = np.zeros(X.shape[1])
            for t in range(T):
                lo, hi = max(a, Fraction(t, T)), min(b, Fraction(t + 1, T))
                if hi > lo:
                    total += float(hi - lo) * X[t]
            out.append(total / float(b - a))
    return np.array(out)


def test_geometry_counts_and_indices():
    assert [n_nodes(L) for L in (1, 2, 3, 6)] == [1, 3, 7, 63]
    assert node_index(1, 1) == 0
    assert node_index(3, 4) == 6
    for p in range(63):
        assert node_index(*node_level(p)) == p
    np.testing.assert_array_equal(node_bounds(2), [[0.0, 1.0], [0.0, 0.5], [0.5, 1.0]])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_levels_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="levels must be an integer >= 1"):
        n_nodes(bad)


def test_node_index_rejects_out_of_level_position():
    with pytest.raises(ValueError, match="k must lie in 1..2 at level 2"):
        node_index(2, 3)


@pytest.mark.parametrize("T", [4, 8, 16, 12])
def test_plain_means_when_level_divides_length(T):
    X = np.random.default_rng(T).normal(size=(T, 3))
    psi = node_descriptors(X, 3)
    for level in range(1, 4):
        n = 2 ** (level - 1)
        for k in range(1, n + 1):
            frames = X[(k - 1) * T // n : k * T // n]
            np.testing.assert_allclose(
                psi[node_index(level, k)], frames.mean(axis=0), rtol=1e-12, atol=1e-12
            )


@pytest.mark.parametrize("T", [1, 2, 3, 5, 7, 13, 31, 100])
@pytest.mark.parametrize("levels", [1, 3, 6])
def test_matches_brute_force_overlap_integral(T, levels):
    X = np.random.default_rng(T * 10 + levels).normal(size=(T, 4))
    np.testing.assert_allclose(
        node_descriptors(X, levels), brute_force_descriptors(X, levels), rtol=1e-10, atol=1e-12
    )


def test_single_frame_fills_every_node():
    X = np.array([[1.5, -2.0]])
    np.testing.assert_array_equal(node_descriptors(X, 4), np.tile(X, (15, 1)))


def test_batch_equals_one_by_one_with_varied_lengths_and_small_chunks():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(T, 3)) * 1e3 for T in (1, 2, 7, 64, 3, 100)]
    expected = np.stack([brute_force_descriptors(x, 4) for x in seqs])
    np.testing.assert_allclose(node_descriptors_batch(seqs, 4), expected, rtol=1e-10)
    # chunk_bytes smaller than one sequence: one chunk per sequence, same result
    np.testing.assert_allclose(node_descriptors_batch(seqs, 4, chunk_bytes=8), expected, rtol=1e-10)


def test_batch_rejects_empty_and_mismatched_sequences():
    with pytest.raises(ValueError, match="sequence 1 must have shape"):
        node_descriptors_batch([np.ones((2, 3)), np.ones((0, 3))], 2)
    with pytest.raises(ValueError, match="sequence 1 has d=2 but sequence 0 has d=3"):
        node_descriptors_batch([np.ones((2, 3)), np.ones((2, 2))], 2)


sequences = st.integers(1, 40).flatmap(
    lambda T: arrays(np.float64, (T, 3), elements=st.floats(-1e3, 1e3))
)


@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 50), value=st.floats(-1e6, 1e6), levels=st.integers(1, 6))
def test_constant_signal_gives_the_constant_everywhere(T, value, levels):
    psi = node_descriptors(np.full((T, 2), value), levels)
    np.testing.assert_allclose(psi, value, rtol=1e-12, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(X=sequences, a=st.floats(-10, 10), b=st.floats(-10, 10))
def test_linear_in_the_frames(X, a, b):
    Y = np.roll(X, 1, axis=0) * 0.5 + 1.0
    lhs = node_descriptors(a * X + b * Y, 4)
    rhs = a * node_descriptors(X, 4) + b * node_descriptors(Y, 4)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(X=sequences)
def test_parent_is_mean_of_its_two_children(X):
    levels = 5
    psi = node_descriptors(X, levels)
    for p in range(n_nodes(levels - 1)):
        level, k = node_level(p)
        left, right = node_index(level + 1, 2 * k - 1), node_index(level + 1, 2 * k)
        np.testing.assert_allclose(psi[p], (psi[left] + psi[right]) / 2, rtol=1e-9, atol=1e-9)


def test_float32_storage_is_float64_rounded_once():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(T, 6)) for T in (1, 2, 5, 17, 64)]
    wide = node_descriptors_batch(X, 5)
    narrow = node_descriptors_batch(X, 5, dtype=np.float32)
    assert narrow.dtype == np.float32
    np.testing.assert_array_equal(narrow, wide.astype(np.float32))
    # Written in place into a slice of a larger array: the same numbers, nothing else.
    larger = np.zeros((7, 31, 6), dtype=np.float32)
    assert node_descriptors_batch(X, 5, out=larger[1:6]) is not None
    np.testing.assert_array_equal(larger[1:6], narrow)
    assert not larger[[0, 6]].any()
    with pytest.raises(ValueError, match=r"out must have shape \(5, 31, 6\)"):
        node_descriptors_batch(X, 5, out=larger)
    with pytest.raises(ValueError, match="out must be a floating-point ndarray"):
        node_descriptors_batch(X, 5, out=np.zeros((5, 31, 6), dtype=int))


def test_overlap_weights_are_the_exact_fractions_rounded_once():
    for levels in (1, 3, 6):
        for T in (1, 2, 3, 7, 31, 32, 33, 100):
            expected = np.zeros((n_nodes(levels), T))
            for level in range(1, levels + 1):
                for k in range(1, 2 ** (level - 1) + 1):
                    a, b = Fraction(k - 1, 2 ** (level - 1)), Fraction(k, 2 ** (level - 1))
                    for t in range(T):
                        lo, hi = max(a, Fraction(t, T)), min(b, Fraction(t + 1, T))
                        if hi > lo:
                            expected[node_index(level, k), t] = float((hi - lo) / (b - a))
            np.testing.assert_array_equal(overlap_weights(T, levels), expected)


def test_batch_scatters_groups_of_one_length_back_to_their_rows():
    rng = np.random.default_rng(4)
    seqs = [rng.normal(size=(T, 5)) for T in (5, 3, 5, 1, 3, 5, 8, 1)]
    expected = np.stack([brute_force_descriptors(x, 3) for x in seqs])
    for chunk_bytes in (2**28, 8, 400):  # one product per length, one per row, two rows
        np.testing.assert_allclose(
            node_descriptors_batch(seqs, 3, chunk_bytes=chunk_bytes),
            expected,
            rtol=1e-12,
            atol=1e-12,
        )
