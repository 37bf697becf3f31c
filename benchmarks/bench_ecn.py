"""Benchmark: sparse/chunked ECN re-ranking (reid-pse) against the dense reference.

Synthetic clustered embeddings (751 identities, ``--dim`` dimensions, TriNet's 128 by
default; the generator of ``rerank_common.py``, as in ``bench_rerank.py``). Runs
:func:`~reid_pse.ecn.ecn_rerank` (rank-list distance, re-ranker ``ecn``) and
:func:`~reid_pse.ecn.ecn_orig_rerank` (original distance, ``ecn-orig``) at
``--n-query`` + ``--n-gallery`` (Market-1501: 3,368 + 15,913 = 19,281) with the authors'
defaults t = 3, q = 8, k = 25, and both of them and the dense reference
:func:`ecn_dense` (``plugins/reid_pse/tests/ecn_reference.py``) at a small ``--dense-n`` (times and max abs
differences). Peak memory: the process's peak RSS (VmHWM, reset before each timed call
through ``/proc/self/clear_refs``) above the RSS before the call. numba compilation (or
its cache load) is done on a tiny problem first and timed separately. The process CPU
time and the load average are recorded beside the wall times (the machine is shared).

    python benchmarks/bench_ecn.py [--n-query 3368 --n-gallery 15913] [--dense-n 1500]

Writes ``benchmarks/results/bench_ecn.json`` (or ``--output``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import rerank_common as rc
from proc_memory import status_mib
from reid_pse.ecn import ecn_orig_rerank, ecn_rerank

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins/reid_pse/tests"))
from ecn_reference import ecn_dense  # noqa: E402

from reidcore.evaluation import pairwise_distances


def main() -> None:
    args = rc.rerank_parser(__doc__.split("\n")[0], "bench_ecn.json", "fast").parse_args()
    load_start = list(os.getloadavg())

    q, g = rc.embeddings(20, 40, 8)
    t0 = time.perf_counter()
    ecn_rerank(q, g)
    ecn_orig_rerank(q, g)
    t_compile = time.perf_counter() - t0
    print(f"numba warm-up (compile or cache load): {t_compile:.2f} s")

    # dense vs fast at a small N
    n_dq = max(args.dense_n // 6, 1)
    q, g = rc.embeddings(n_dq, args.dense_n - n_dq, args.dim, seed=1)
    d = [pairwise_distances(a, b, device="cpu") for a, b in ((q, g), (q, q), (g, g))]
    small = {}
    for name, fast_fn, method in (("ecn", ecn_rerank, "rankdist"),
                                  ("ecn-orig", ecn_orig_rerank, "origdist")):
        ref, t_ref, m_ref = rc.measured(ecn_dense, *d, method=method)
        fast, t_fast, m_fast = rc.measured(fast_fn, q, g, chunk_size=args.chunk_size)
        diff = float(np.abs(ref - fast).max())
        small[name] = {"dense_s": t_ref, "dense_peak_rss_extra_mib": m_ref, "fast_s": t_fast,
                       "fast_peak_rss_extra_mib": m_fast, "dense_over_fast_ratio": t_ref / t_fast,
                       "max_abs_difference": diff, "max_abs_value": float(np.abs(ref).max())}
        print(f"{name}, " + rc.dense_vs_fast_line(args.dense_n, n_dq, (t_ref, m_ref),
                                                   (t_fast, m_fast), "fast", diff)
              + f" (values up to {np.abs(ref).max():.3g})")

    # the large size
    q, g = rc.embeddings(args.n_query, args.n_gallery, args.dim, seed=2)
    n = args.n_query + args.n_gallery
    big = {}
    for name, fast_fn in (("ecn", ecn_rerank), ("ecn-orig", ecn_orig_rerank)):
        rss_before = status_mib("VmRSS")
        load = os.getloadavg()[0]
        cpu0 = time.process_time()
        out, t_big, m_big = rc.measured(fast_fn, q, g, chunk_size=args.chunk_size)
        cpu = time.process_time() - cpu0
        big[name] = {"s": t_big, "process_cpu_s": cpu, "load_average_1_min_before": load,
                     "peak_rss_extra_mib": m_big, "rss_before_mib": rss_before,
                     "output_mib": out.nbytes / 2**20}
        print(f"{name}, N = {n} ({args.n_query} + {args.n_gallery}), D = {args.dim}: "
              f"{t_big:.2f} s wall ({cpu:.2f} s CPU, load {load:.1f}), peak RSS +{rc.mib(m_big)} MiB above the "
              f"{rc.mib(rss_before)} MiB before (output "
              f"{out.nbytes / 2**20:.0f} MiB included)")
        del out

    res = {
        "n_query": args.n_query, "n_gallery": args.n_gallery, "n": n, "dim": args.dim,
        "t": 3, "q": 8, "k": 25, "metric": "euclidean", "chunk_size": args.chunk_size,
        "compile_or_cache_load_s": t_compile,
        "large": big,
        "dense_n": args.dense_n, "dense_n_query": n_dq, "at_dense_n": small,
        "load_average_1_5_15_min_at_start": load_start,
        **rc.machine_record(),
    }
    rc.write_json(args.output, res)


if __name__ == "__main__":
    main()
