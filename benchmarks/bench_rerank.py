"""Benchmark: sparse/chunked k-reciprocal re-ranking against the dense reference.

Synthetic clustered embeddings (751 identities, ``--dim`` dimensions, TriNet's 128 by
default). Runs :func:`~reidcore.evaluation.rerank_kreciprocal.k_reciprocal_rerank`
at ``--n-query`` + ``--n-gallery`` (Market-1501: 3,368 + 15,913 = 19,281) and, in the
same run, both it and the dense reference
:func:`k_reciprocal_dense` (``tests/rerank_reference.py``) at a small
``--dense-n`` (time ratio and max abs difference there). Peak memory: the process's
peak RSS (VmHWM, reset before each timed call through ``/proc/self/clear_refs``) above
the RSS before the call. numba compilation is done on a tiny problem first and timed
separately.

    python benchmarks/bench_rerank.py [--n-query 3368 --n-gallery 15913] [--dense-n 1500]

Writes ``benchmarks/results/bench_rerank.json`` (or ``--output``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np
import rerank_common as rc
import torch
from proc_memory import status_mib

from reidcore.evaluation import pairwise_distances
from reidcore.evaluation.rerank_kreciprocal import k_reciprocal_rerank

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from rerank_reference import k_reciprocal_dense  # noqa: E402


def main() -> None:
    args = rc.rerank_parser(__doc__.split("\n")[0], "bench_rerank.json", "sparse").parse_args()

    q, g = rc.embeddings(20, 40, 8)
    t0 = time.perf_counter()
    k_reciprocal_rerank(q, g)
    t_compile = time.perf_counter() - t0
    print(f"numba warm-up (compile or cache load): {t_compile:.2f} s")

    # dense vs sparse at a small N
    n_dq = max(args.dense_n // 6, 1)
    q, g = rc.embeddings(n_dq, args.dense_n - n_dq, args.dim, seed=1)
    d_qg, d_qq, d_gg = pairwise_distances(q, g), pairwise_distances(q, q), pairwise_distances(g, g)
    dense, t_dense, m_dense = rc.measured(k_reciprocal_dense, d_qg, d_qq, d_gg)
    sparse, t_sparse_small, m_sparse_small = rc.measured(k_reciprocal_rerank, q, g,
                                                         chunk_size=args.chunk_size)
    diff = float(np.abs(dense - sparse).max())
    print(rc.dense_vs_fast_line(args.dense_n, n_dq, (t_dense, m_dense),
                                (t_sparse_small, m_sparse_small), "sparse", diff))

    # the large size
    q, g = rc.embeddings(args.n_query, args.n_gallery, args.dim, seed=2)
    n = args.n_query + args.n_gallery
    rss_before = status_mib("VmRSS")
    out, t_big, m_big = rc.measured(k_reciprocal_rerank, q, g, chunk_size=args.chunk_size)
    print(f"N = {n} ({args.n_query} + {args.n_gallery}), D = {args.dim}: sparse "
          f"{t_big:.2f} s, peak RSS +{rc.mib(m_big)} MiB above the "
          f"{rc.mib(rss_before)} MiB before "
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
        **rc.machine_record(),
    }
    rc.write_json(args.output, res)


if __name__ == "__main__":
    main()
