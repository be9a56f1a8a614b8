"""mkl_tp: action recognition with learned temporal pyramids.

Per-frame CNN features are pooled over the nodes of a temporal pyramid and a
multiple-kernel SVM learns how much each node (each temporal granularity) matters.
"""

from ._utils.lazy import lazy_attributes

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "PyramidMKLClassifier",
    "LateFusionClassifier",
    "Dataset",
    "load_basic_motions",
    "from_channels_first",
    "n_nodes",
    "node_bounds",
    "node_descriptors",
    "node_descriptors_batch",
    "sample_frames",
    "FeatureWriter",
    "list_videos",
    "load_features",
    "read_info",
    "failed_videos",
]

# Public name -> the module that defines it. Names are imported on first access (PEP 562),
# so `import mkl_tp` and the command lines' --help do not pay for scikit-learn or torch.
_LAZY = {
    "PyramidMKLClassifier": "estimator",
    "LateFusionClassifier": "fusion",
    "Dataset": "sources",
    "load_basic_motions": "sources",
    "from_channels_first": "sources",
    "n_nodes": "pyramid",
    "node_bounds": "pyramid",
    "node_descriptors": "pyramid",
    "node_descriptors_batch": "pyramid",
    "sample_frames": "pyramid",
    "FeatureWriter": "store",
    "list_videos": "store",
    "load_features": "store",
    "read_info": "store",
    "failed_videos": "store",
    # Needs torch, which the core install leaves out: kept out of __all__ so that
    # `from mkl_tp import *` works without torch.
    "DeepPyramidClassifier": "deep",
}


def _needs_torch(name):
    if _LAZY[name] == "deep":
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"mkl_tp.{name} needs torch: pip install mkl_tp[deep]") from exc


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, check=_needs_torch)
