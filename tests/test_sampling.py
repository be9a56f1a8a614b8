"""The package's one fold convention against scikit-learn's StratifiedKFold itself."""

import numpy as np
from sklearn.model_selection import StratifiedKFold

from mkl_tp._utils.sampling import stratified_folds


def _pairs(folds):
    return [(list(a), list(b)) for a, b in folds]


def test_without_a_seed_the_folds_are_scikit_learns_cv_int():
    y = np.array([0, 1, 2] * 7)
    expected = StratifiedKFold(3).split(np.zeros(len(y)), y)
    assert _pairs(stratified_folds(y, 3)) == _pairs(expected)
    assert _pairs(stratified_folds(y, 3)) == _pairs(stratified_folds(y, 3))


def test_a_seed_shuffles_reproducibly():
    y = np.array([0, 1] * 10)
    expected = StratifiedKFold(3, shuffle=True, random_state=5).split(np.zeros(len(y)), y)
    assert _pairs(stratified_folds(y, 3, random_state=5)) == _pairs(expected)


def test_fold_count_is_capped_by_the_smallest_class():
    y = np.array([0] * 10 + [1] * 2)
    folds = stratified_folds(y, 3)
    assert len(folds) == 2
    for train, test in folds:
        assert set(y[test]) == {0, 1} and np.intersect1d(train, test).size == 0
    assert stratified_folds(np.array([0, 0, 0, 1]), 3) == []
