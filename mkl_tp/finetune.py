"""Alias of :mod:`mkl_tp.deep.finetune`, where end-to-end fine-tuning lives."""

from .deep.finetune import *  # noqa: F401,F403
from .deep.finetune import __all__  # noqa: F401
