"""Benchmark: sparse/chunked k-reciprocal re-ranking against the dense reference.

Synthetic clustered embeddings (751 identities, ``--dim`` dimensions, TriNet's 128 by
default). Runs :func:`~reidcore.evaluation.rerank_kreciprocal.k_reciprocal_rerank`
at ``--n-query`` + ``--n-gallery`` (Market-1501: 3,368 + 15,913 = 19,281) and, in the
same run, both it and the dense reference
:func:`~reidcore.evaluation.rerank_kreciprocal.k_reciprocal_dense` at a small
``--dense-n`` (time ratio and max abs difference there). Peak memory: the process's
peak RSS (VmHWM, reset before each timed call through ``/proc/self/clear_refs``) above
the RSS before the call. numba compilation is done on a tiny problem first and timed
separately.

    python benchmarks/bench_rerank.py [--n-query 3368 --n-gallery 15913] [--dense-n 1500]

Writes ``benchmarks/results/bench_rerank.json`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np
import torch
from proc_memory import status_mib

from reidcore.evaluation import pairwise_distances
from reidcore.evaluation.rerank_kreciprocal import k_reciprocal_dense, k_reciprocal_rerank


def measured(fn, *args, **kwargs):
    """``(result, seconds, peak RSS MiB above the RSS before, or None)``."""
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


def embeddings(n_q: int, n_g: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(751, dim)).astype(np.float32)
    q = centres[rng.integers(0, 751, n_q)] + 1.2 * rng.normal(size=(n_q, dim)).astype(np.float32)
    g = centres[rng.integers(0, 751, n_g)] + 1.2 * rng.normal(size=(n_g, dim)).astype(np.float32)
    return q.astype(np.float32), g.astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-query", type=int, default=3368)
    p.add_argument("--n-gallery", type=int, default=15913)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--dense-n", type=int, default=1500,
                   help="query + gallery size of the dense-vs-sparse comparison")
    p.add_argument("--chunk-size", type=int, default=1024)
    p.add_argument("--output", type=Path,
                   default=Path(__file__).parent / "results" / "bench_rerank.json")
    args = p.parse_args()

    q, g = embeddings(20, 40, 8)
    t0 = time.perf_counter()
    k_reciprocal_rerank(q, g)
    t_compile = time.perf_counter() - t0
    print(f"numba warm-up (compile or cache load): {t_compile:.2f} s")

    # dense vs sparse at a small N
    n_dq = max(args.dense_n // 6, 1)
    q, g = embeddings(n_dq, args.dense_n - n_dq, args.dim, seed=1)
    d_qg, d_qq, d_gg = pairwise_distances(q, g), pairwise_distances(q, q), pairwise_distances(g, g)
    dense, t_dense, m_dense = measured(k_reciprocal_dense, d_qg, d_qq, d_gg)
    sparse, t_sparse_small, m_sparse_small = measured(k_reciprocal_rerank, q, g,
                                                      chunk_size=args.chunk_size)
    diff = float(np.abs(dense - sparse).max())
    print(f"N = {args.dense_n} ({n_dq} + {args.dense_n - n_dq}): dense reference "
          f"{t_dense:.2f} s (+{m_dense or float('nan'):.0f} MiB), sparse {t_sparse_small:.2f} s "
          f"(+{m_sparse_small or float('nan'):.0f} MiB); ratio {t_dense / t_sparse_small:.1f}x; "
          f"max |dense - sparse| = {diff:.2e}")

    # the large size
    q, g = embeddings(args.n_query, args.n_gallery, args.dim, seed=2)
    n = args.n_query + args.n_gallery
    out, t_big, m_big = measured(k_reciprocal_rerank, q, g, chunk_size=args.chunk_size)
    print(f"N = {n} ({args.n_query} + {args.n_gallery}), D = {args.dim}: sparse "
          f"{t_big:.2f} s, peak RSS +{m_big or float('nan'):.0f} MiB above the "
          f"{status_mib('VmRSS') or float('nan'):.0f} MiB before "
          f"(output {out.nbytes / 2**20:.0f} MiB included); numba threads "
          f"{numba.get_num_threads()}, torch threads {torch.get_num_threads()}")

    res = {
        "n_query": args.n_query, "n_gallery": args.n_gallery, "n": n, "dim": args.dim,
        "k1": 20, "k2": 6, "lambda": 0.3, "chunk_size": args.chunk_size,
        "compile_or_cache_load_s": t_compile,
        "sparse_s": t_big, "sparse_peak_rss_extra_mib": m_big,
        "dense_n": args.dense_n, "dense_s": t_dense, "dense_peak_rss_extra_mib": m_dense,
        "sparse_s_at_dense_n": t_sparse_small,
        "sparse_peak_rss_extra_mib_at_dense_n": m_sparse_small,
        "dense_over_sparse_ratio_at_dense_n": t_dense / t_sparse_small,
        "max_abs_difference_at_dense_n": diff,
        "numba_threads": int(numba.get_num_threads()),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1_5_15_min_at_end": list(os.getloadavg()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
