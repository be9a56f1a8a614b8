"""mkl_tp: action recognition with learned temporal pyramids.

Per-frame CNN features are pooled over the nodes of a temporal pyramid and a
multiple-kernel SVM learns how much each node (each temporal granularity) matters.
"""

__version__ = "0.1.0"

from .datasets import Dataset, load_basic_motions
from .estimator import PyramidMKLClassifier
from .fusion import LateFusionClassifier
from .pyramid import n_nodes, node_bounds, node_descriptors, node_descriptors_batch
from .store import FeatureWriter, failed_videos, list_videos, load_features, read_info

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
    "FeatureWriter",
    "list_videos",
    "load_features",
    "read_info",
    "failed_videos",
]
# DeepPyramidClassifier (mkl_tp.deep) needs torch, which the core install leaves out: it is
# imported on first access and kept out of __all__ so that `from mkl_tp import *` works
# without torch.
_LAZY = {"DeepPyramidClassifier": "deep"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"mkl_tp.{name} needs torch: pip install mkl_tp[deep]") from exc
    from importlib import import_module

    return getattr(import_module(f".{_LAZY[name]}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
