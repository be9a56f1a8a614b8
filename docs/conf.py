"""Sphinx configuration for mkl_tp."""

import importlib.util
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import mkl_tp  # noqa: E402

project = "mkl_tp"
author = "mkl_tp developers"
release = mkl_tp.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
# Every cross-reference must resolve (the suite builds with -n -W, tests/test_docs.py). The
# docs build offline: numpy's and torch's types have no inventory to link to.
nitpicky = True
nitpick_ignore = [
    ("py:class", "numpy.ndarray"),
    ("py:class", "torch.device"),
    ("py:class", "torch.nn.modules.module.Module"),
]
# The extract extra's decoders are not needed to document mkl_tp.video (make docs installs
# the docs and deep extras only).
autodoc_mock_imports = [name for name in ("cv2", "av") if importlib.util.find_spec(name) is None]
