"""Pieces shared by the re-ranking benchmarks (``bench_rerank.py``, ``bench_ecn.py``).

The synthetic embeddings, a timed call with its peak memory, the common command line,
the record of the machine and thread counts, and the atomic JSON write.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np
import torch
from proc_memory import status_mib

#: Identities of the synthetic embeddings (Market-1501's 751 test identities).
N_IDS = 751
#: Standard deviation of an image's noise around its identity's unit-normal centre.
NOISE = 1.2


def embeddings(n_q: int, n_g: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered query and gallery embeddings, float32 ``(n_q, dim)`` and ``(n_g, dim)``.

    Each row is the unit-normal centre of one of :data:`N_IDS` identities (drawn
    uniformly) plus normal noise of standard deviation :data:`NOISE`; ``seed`` fixes both.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_IDS, dim)).astype(np.float32)
    q = centres[rng.integers(0, N_IDS, n_q)] + NOISE * rng.normal(size=(n_q, dim)).astype(np.float32)
    g = centres[rng.integers(0, N_IDS, n_g)] + NOISE * rng.normal(size=(n_g, dim)).astype(np.float32)
    return q.astype(np.float32), g.astype(np.float32)


def measured(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)``; return ``(result, wall seconds, peak RSS in MiB above
    the RSS before the call)``.

    The peak is the process's VmHWM after resetting it through ``/proc/self/clear_refs``
    (Linux >= 4.0); it is None where that reset or ``/proc`` is unavailable.
    """
    before = status_mib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    dt = time.perf_counter() - t0
    peak = status_mib("VmHWM") if reset else None
    extra = peak - before if peak is not None and before is not None else None
    return out, dt, extra


def mib(value: float | None) -> str:
    """A MiB figure for the printed lines: ``"466"``, or ``"?"`` where it was not measured."""
    return "?" if value is None else f"{value:.0f}"


def dense_vs_fast_line(n_dense: int, n_query: int, dense: tuple[float, float | None],
                       fast: tuple[float, float | None], fast_name: str, diff: float) -> str:
    """The printed line of the small-N comparison.

    ``dense`` and ``fast``: ``(seconds, peak RSS MiB above the start or None)`` of the
    dense reference and of the re-ranker called ``fast_name``; ``n_query`` of the
    ``n_dense`` embeddings are queries; ``diff``: max abs difference of their outputs.
    """
    (t_dense, m_dense), (t_fast, m_fast) = dense, fast
    return (f"N = {n_dense} ({n_query} + {n_dense - n_query}): dense {t_dense:.2f} s "
            f"(+{mib(m_dense)} MiB), {fast_name} {t_fast:.3f} s (+{mib(m_fast)} MiB); ratio "
            f"{t_dense / t_fast:.1f}x; max |dense - {fast_name}| = {diff:.2e}")


def rerank_parser(description: str, output_name: str, compared: str) -> argparse.ArgumentParser:
    """The options both re-ranking benchmarks take.

    ``--n-query``/``--n-gallery`` (Market-1501's 3,368 + 15,913), ``--dim`` (128),
    ``--dense-n`` (1,500: query + gallery size of the dense-vs-``compared`` comparison),
    ``--chunk-size`` (1,024) and ``--output`` (``benchmarks/results/<output_name>``).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--n-query", type=int, default=3368)
    p.add_argument("--n-gallery", type=int, default=15913)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--dense-n", type=int, default=1500,
                   help=f"query + gallery size of the dense-vs-{compared} comparison")
    p.add_argument("--chunk-size", type=int, default=1024)
    p.add_argument("--output", type=Path,
                   default=Path(__file__).parent / "results" / output_name)
    return p


def machine_record() -> dict:
    """numba and torch thread counts, CPU count, platform and the load averages now."""
    return {
        "numba_threads": int(numba.get_num_threads()),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1_5_15_min_at_end": list(os.getloadavg()),
    }


def write_json(path: Path, record: dict) -> None:
    """Write ``record`` as indented JSON to ``path`` atomically (reidcore.atomic)."""
    from reidcore.atomic import atomic_write_json

    atomic_write_json(path, record)
    print(f"wrote {path}")
