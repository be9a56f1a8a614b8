"""Deep multiple aggregation: the temporal pyramid as a layer of a network (Section 3.2).

- :mod:`~mkl_tp.deep.pool`: :class:`TemporalPyramidPool`, the differentiable pyramid;
- :mod:`~mkl_tp.deep.nets`: the per-stream heads and their late fusion;
- :mod:`~mkl_tp.deep.train`: the training loop on cached node descriptors;
- :mod:`~mkl_tp.deep.classifier`: :class:`DeepPyramidClassifier`, the estimator;
- :mod:`~mkl_tp.deep.finetune`: backbone, pyramid and head trained together (Eqs. 6-7).

This package needs torch (``pip install mkl_tp[deep]``); :mod:`mkl_tp` itself does not.
"""

from . import finetune
from .classifier import DeepPyramidClassifier
from .pool import MODES, TemporalPyramidPool

__all__ = ["MODES", "TemporalPyramidPool", "DeepPyramidClassifier", "finetune"]
