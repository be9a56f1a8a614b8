"""Values of ``python -m mkl_tp.fit``'s options from their text: each returns the value or
raises ``ValueError`` with the message the command line shows."""

import argparse
import math

__all__ = [
    "C",
    "argument",
    "at_least_one",
    "frames",
    "frames_of",
    "levels",
    "mkl_norm",
    "networks",
    "positive",
]


def argument(parse):
    """An argparse ``type`` from one of this module's parsers: its ``ValueError`` becomes
    argparse's one-line usage error."""

    def checked(text):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    checked.__name__ = parse.__name__
    return checked


def levels(text):
    """``6`` -> [6]; ``1-6`` -> [1..6]; ``2,4,6`` -> [2, 4, 6]."""
    try:
        if "-" in text:
            low, high = (int(v) for v in text.split("-"))
        else:
            values = sorted({int(v) for v in text.split(",")})
    except ValueError:
        raise ValueError(f"expected N, A-B or A,B,C, got {text!r}") from None
    if "-" in text:
        if low > high:
            raise ValueError(f"the range {text!r} is reversed; write {high}-{low}")
        values = list(range(low, high + 1))
    if not values or min(values) < 1 or max(values) > 10:
        raise ValueError(f"levels must lie in 1..10, got {text!r}")
    return values


def C(text):
    """A positive number or ``auto``."""
    return text if text == "auto" else positive(text, alternative=" or 'auto'")


def positive(text, alternative=""):
    """A finite positive number."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a positive number{alternative}, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"expected a finite positive number{alternative}, got {text!r}")
    return value


def at_least_one(text):
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"expected at least 1, got {text!r}")
    return value


def networks(text):
    """``auto`` (the deep estimator's own rule) or an integer >= 1."""
    return text if text == "auto" else at_least_one(text)


def mkl_norm(text):
    """``auto`` (the estimator's own rule), ``inf``, or a number >= 1."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number >= 1, 'inf' or 'auto', got {text!r}") from None
    if math.isnan(value) or value < 1:
        raise ValueError(f"the norm must be >= 1 (or inf), got {text!r}")
    return value


def frames(text):
    """Frames kept per video: ``all``; ``25`` (every stream); ``rgb=25,flow=50`` (per
    stream, streams not named keep all)."""
    if text == "all":
        return text
    if "=" not in text:
        return at_least_one(text)
    counts = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise ValueError(f"expected all, N or STREAM=N[,STREAM=N], got {text!r}")
        if name in counts:
            raise ValueError(f"stream {name!r} is given twice in {text!r}")
        counts[name] = value if value == "all" else at_least_one(value)
    return counts


def frames_of(spec, stream):
    """The count :func:`frames` gives ``stream`` (``None``: every frame)."""
    count = spec.get(stream, "all") if isinstance(spec, dict) else spec
    return None if count in (None, "all") else count
