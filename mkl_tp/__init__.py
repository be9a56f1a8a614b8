"""mkl_tp: action recognition with learned temporal pyramids.

Per-frame CNN features are pooled over the nodes of a temporal pyramid and a
multiple-kernel SVM learns how much each node (each temporal granularity) matters.
"""

__version__ = "0.1.0"

from .datasets import Dataset, load_basic_motions
from .estimator import PyramidMKLClassifier
from .fusion import LateFusionClassifier
from .pyramid import n_nodes, node_bounds, node_descriptors, node_descriptors_batch

__all__ = [
    "__version__",
    "PyramidMKLClassifier",
    "LateFusionClassifier",
    "Dataset",
    "load_basic_motions",
    "n_nodes",
    "node_bounds",
    "node_descriptors",
    "node_descriptors_batch",
]
