"""Sphinx configuration for mkl_tp."""

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
nitpicky = False
