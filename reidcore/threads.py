"""Thread settings of torch and numba, in one place.

Both torch's intra-op threads and numba's ``parallel=True`` kernels (the rank kernel,
the re-rankers) run on OpenMP (GNU libgomp; numba's ``omp`` threading layer loads the
same ``libgomp.so.1`` that torch ships). libgomp's default lets idle worker threads spin
after every parallel region; on a busy machine those spinning threads take the cores
from the main thread: 1,000 small :func:`~reidcore.evaluation.evaluate` calls (20 x 200)
on a shared 2-core machine at load 10 took 5.2 ms per call with the default and
0.14-0.49 ms with ``OMP_WAIT_POLICY=PASSIVE`` (``benchmarks/bench_threads.py``). libgomp reads the policy once, when it is loaded (at
``import torch``), so :func:`apply_wait_policy` runs when :mod:`reidcore` is imported,
before torch: ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it already (set
``OMP_WAIT_POLICY=ACTIVE`` to get the spinning back). :func:`set_threads` sets torch's
and numba's thread counts together.

Starting numba's ``omp`` thread pool (its first parallel kernel) sets the process's OpenMP
thread count to numba's (``NUMBA_NUM_THREADS``, the CPU count by default), and torch reads
that count: with ``OMP_NUM_THREADS=1`` on 2 cores torch trained on 1 thread before the first
evaluation and on 2 after it, so a second run in the same process (a later stage, a test)
took other float paths, and a user's thread limit was lost. :func:`start_numba_threads`
starts the pool once and gives torch its count back; :mod:`reidcore.evaluation` (every
numba kernel's package) calls it when it is imported.
"""

from __future__ import annotations

import os
import sys

__all__ = ["apply_wait_policy", "set_threads", "start_numba_threads", "thread_settings"]

#: what :func:`apply_wait_policy` found: whether torch was imported before it
_STATE = {"torch_loaded_first": False}


def apply_wait_policy() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` (and Intel OpenMP's ``KMP_BLOCKTIME=0``) unless already
    set. Takes effect only if no OpenMP runtime is loaded yet (torch not imported)."""
    _STATE["torch_loaded_first"] = "torch" in sys.modules
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("KMP_BLOCKTIME", "0")


def start_numba_threads() -> None:
    """Start numba's thread pool now (once), keeping torch's intra-op thread count."""
    import numba
    import torch

    kept = torch.get_num_threads()
    numba.set_num_threads(numba.get_num_threads())  # starts the pool; sets OpenMP's count
    if torch.get_num_threads() != kept:
        torch.set_num_threads(kept)


def set_threads(num_threads: int) -> int:
    """Use ``num_threads`` threads in torch and in numba's parallel kernels.

    Numba's count is capped at its pool size (``NUMBA_NUM_THREADS``, the CPU count by
    default). Returns ``num_threads``.

    Raises:
        ValueError: ``num_threads < 1``.
    """
    import numba
    import torch

    if isinstance(num_threads, bool) or int(num_threads) != num_threads or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    num_threads = int(num_threads)
    torch.set_num_threads(num_threads)
    numba.set_num_threads(min(num_threads, numba.config.NUMBA_NUM_THREADS))
    return num_threads


def thread_settings() -> dict[str, object]:
    """The settings in effect, for reports and benchmarks: torch and numba thread counts,
    numba's threading layer (``None`` before the first parallel call), the wait policy
    and whether torch was imported before :mod:`reidcore` (then the policy may not
    apply to it)."""
    import numba
    import torch

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = None
    return {"torch_threads": torch.get_num_threads(),
            "numba_threads": int(numba.get_num_threads()),
            "numba_threading_layer": layer,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "torch_imported_before_reidcore": _STATE["torch_loaded_first"]}
