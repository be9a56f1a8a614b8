"""BLAS threads: one for small problems."""

from functools import lru_cache


@lru_cache(maxsize=1)
def _controller():
    # Finding the loaded BLAS libraries walks the process's shared objects (milliseconds);
    # done once, not at every limit: the primal solver limits threads at every outer step.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded_blas():
    """Context manager limiting BLAS to one thread: small factorisations and solves are far
    too small to share, and multi-threaded OpenBLAS spins on tiny problems while the other
    cores are busy, so they must run on one thread (docs/performance.rst, "Choosing the
    settings")."""
    return _controller().limit(limits=1, user_api="blas")


def blas_threads():
    """The threads BLAS uses now (1 when no BLAS library is loaded)."""
    return max(
        [lib.num_threads for lib in _controller().select(user_api="blas").lib_controllers] or [1]
    )
