"""Pickles that say which mkl_tp made them."""

from .. import __version__


class VersionedPickleMixin:
    """Record ``_mkl_tp_version`` in the pickled state, as scikit-learn records its own.

    ``python -m mkl_tp.predict`` compares it with the running version before predicting.
    """

    def __getstate__(self):
        state = super().__getstate__()
        state["_mkl_tp_version"] = __version__
        return state
