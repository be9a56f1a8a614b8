"""Memory: what this process can still allocate; freed memory handed back between stages."""

import ctypes
import os
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return None


def release_free_memory():
    """Return the C heap's free pages to the system (glibc's ``malloc_trim``; a no-op
    elsewhere).

    glibc keeps freed blocks below its mmap threshold (which grows up to 32 MB as large
    arrays are freed) in its heaps, one per thread: after the node features or an
    alpha-step of many tasks, the process kept gigabytes it no longer used
    (docs/performance.rst, "Out of core"). Called between the stages of a fit.
    """
    trim = _trim()
    if trim is not None:
        trim(0)


def available_memory():
    """Bytes this process can still allocate: ``MemAvailable`` (Linux), else physical memory.

    Returns
    -------
    int or None
        ``None`` when the platform tells neither.
    """
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
