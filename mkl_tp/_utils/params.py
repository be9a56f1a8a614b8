"""Parameter constraints checked once, at the start of ``fit``."""

from contextlib import contextmanager
from contextvars import ContextVar
from numbers import Integral, Real

import numpy as np

# The pattern of scikit-learn's ``_parameter_constraints`` (sklearn.utils._param_validation
# is private, so the few pieces needed are written here): every estimator lists the
# accepted values of each parameter once, and ``fit`` checks them all before any work.


class Interval:
    """Numbers of ``kind`` (``Integral`` or ``Real``; never bool) within bounds, finite."""

    def __init__(self, kind, low=None, high=None, closed="both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value):
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if not np.isfinite(value):
            return False
        if self.low is not None and (
            value < self.low or (value == self.low and self.closed not in ("left", "both"))
        ):
            return False
        return (
            self.high is None
            or value < self.high
            or (value == self.high and self.closed in ("right", "both"))
        )

    @property
    def description(self):
        noun = "an integer" if self.kind is Integral else "a finite number"
        if self.kind is not Integral and self.low == 0 and self.high is None:
            return (
                "a positive finite number"
                if self.closed in ("neither", "right")
                else "a finite number >= 0"
            )
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.closed in ('left', 'both') else '>'} {self.low}")
        if self.high is not None:
            parts.append(f"{'<=' if self.closed in ('right', 'both') else '<'} {self.high}")
        return " ".join([noun] + [" and ".join(parts)] if parts else [noun])


class Options:
    """One of a fixed set of values (strings or dtypes)."""

    def __init__(self, options, dtype=False):
        self.options, self.dtype = tuple(options), dtype

    def accepts(self, value):
        if self.dtype:
            try:
                return np.dtype(value) in [np.dtype(o) for o in self.options]
            except TypeError:
                return False
        return isinstance(value, str) and value in self.options

    @property
    def description(self):
        if len(self.options) == 2:
            return f"{self.options[0]!r} or {self.options[1]!r}"
        return f"one of {self.options}"


class Kind:
    """Any instance of ``kinds`` (``description`` names them for the message)."""

    def __init__(self, kinds, description):
        self.kinds, self.description = kinds, description

    def accepts(self, value):
        return isinstance(value, self.kinds)


class Exactly:
    """One special value, e.g. ``inf`` where finite numbers are otherwise required."""

    def __init__(self, value, description):
        self.value, self.description = value, description

    def accepts(self, value):
        return not isinstance(value, bool) and isinstance(value, Real) and value == self.value


ARRAY_LIKE = Kind((list, tuple, np.ndarray), "an array of weights")
NONE = Kind(type(None), "None")


def check_parameters(estimator, constraints):
    """Raise ``ValueError`` naming the first parameter that no constraint accepts."""
    for name, allowed in constraints.items():
        value = getattr(estimator, name)
        if not any(rule.accepts(value) for rule in allowed):
            described = " or ".join(rule.description for rule in allowed)
            raise ValueError(f"{name} must be {described}, got {value!r}")


def check_choice(name, value, choices):
    """Raise ``ValueError`` unless ``value`` is one of ``choices``; return it."""
    rule = Options(choices)
    if not rule.accepts(value):
        raise ValueError(f"{name} must be {rule.description}, got {value!r}")
    return value


# False inside without_cross_check(): fits there skip the cross kernel's check.
_CROSS_CHECK = ContextVar("mkl_tp_cross_check", default=True)


@contextmanager
def without_cross_check():
    """Within this context, cross fits skip their check against the linear kernel
    (docs/maths.rst): for the helper fits of a search or of cross-validated scores, whose
    models are not the one kept, where the check (and its warning) would run once per
    fold. Nested fits (a wrapper's own folds) are covered too."""
    token = _CROSS_CHECK.set(False)
    try:
        yield
    finally:
        _CROSS_CHECK.reset(token)


def cross_check_wanted():
    """Whether a cross fit here runs its check: outside :func:`without_cross_check`."""
    return _CROSS_CHECK.get()
