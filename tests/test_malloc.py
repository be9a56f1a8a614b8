"""Handing freed memory back to the system (mkl_tp._utils.memory)."""

import platform
import sys

import numpy as np
import pytest

from mkl_tp._utils import memory


def _rss_bytes():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's; elsewhere release_free_memory does nothing",
)
def test_release_free_memory_returns_freed_heap_blocks_to_the_system():
    # Blocks under glibc's mmap threshold stay in the heap when freed; 2000 of 64 KB
    # with a small survivor between each keep the heap from shrinking by itself.
    blocks, keep = [], []
    for _ in range(2000):
        blocks.append(np.ones(8192))
        keep.append(np.ones(8))
    del blocks
    before = _rss_bytes()
    memory.release_free_memory()
    assert memory._trim() is not None
    assert _rss_bytes() < before - 50 * 2**20


def test_release_free_memory_is_harmless_anywhere():
    assert memory.release_free_memory() is None
