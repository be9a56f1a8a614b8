"""mkl_tp: action recognition with learned temporal pyramids.

Per-frame CNN features are pooled over the nodes of a temporal pyramid and a
multiple-kernel SVM learns how much each node (each temporal granularity) matters.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
