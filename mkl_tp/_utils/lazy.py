"""Package attributes imported on first access (PEP 562), so that importing a package does
not load the heavy modules (scikit-learn, torch, OpenCV) behind its names."""

import sys
from importlib import import_module


def lazy_attributes(package, table, check=None):
    """``(__getattr__, __dir__)`` for ``package``: each name in ``table`` comes from the
    submodule ``table[name]`` the first time it is read, then stays in the package.

    ``check(name)``, when given, runs before the import (e.g. to name a missing extra).
    """

    def __getattr__(name):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if check is not None:
            check(name)
        value = getattr(import_module(f".{table[name]}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
