"""Benchmark: evaluation and re-ranking at MSMT17's test size, streamed, against the floor.

Synthetic clustered embeddings (``--ids`` identities, ``--cams`` cameras, ``--dim``
dimensions) for ``--n-query`` queries and ``--n-gallery`` gallery images (MSMT17's test
split: 11,659 x 82,161, D = 256). Timed in one run, each with its process CPU time, the
load average before it, and the peak RSS (VmHWM, reset through
``/proc/self/clear_refs`` before each step; absolute, and above the RSS before):

* ``floor_all_pairs``: one pass of all-pairs distances over ``N = n_q + n_g`` (the
  physical floor of exact re-ranking), in the blocks the re-rankers use, discarded;
* ``floor_query_gallery``: one pass of the ``n_q x n_g`` distances (evaluation's floor);
* ``evaluation``: :func:`reidcore.evaluation.evaluate_from_embeddings` (market1501);
* ``neighbour_search``: :func:`reidcore.evaluation.search_neighbours` (``k = 26``, once,
  shared by both re-rankers);
* ``k_reciprocal`` and ``ecn`` (reid-pse, authors' 2020 version): the streamed
  re-ranker given the search's neighbours, evaluated block by block; each re-ranker's
  total is its own part plus the search.

numba compilation (or its cache load) happens on a tiny problem first. The machine is
shared: run under ``nice``; the load averages are in the JSON.

    nice -n 10 python benchmarks/bench_scale.py [--n-query 11659 --n-gallery 82161 --dim 256]

Writes ``benchmarks/results/bench_scale.json`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from proc_memory import status_mib
from reid_pse.ecn import ecn_rerank

from reidcore.evaluation import evaluate_from_embeddings, search_neighbours
from reidcore.evaluation.neighbours import DistanceBlocks
from reidcore.evaluation.rerank_kreciprocal import k_reciprocal_rerank
from reidcore.evaluation.streaming import embedding_rows
from reidcore.threads import thread_settings


def problem(n_q: int, n_g: int, dim: int, ids: int, cams: int, seed: int = 0):
    """Clustered embeddings: identity centres (unit normal) plus noise (sd 1.2); ids and
    cameras uniform."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, ids, n_q), rng.integers(0, ids, n_g)
    q = centres[q_pids] + 1.2 * rng.normal(size=(n_q, dim)).astype(np.float32)
    g = centres[g_pids] + 1.2 * rng.normal(size=(n_g, dim)).astype(np.float32)
    return (q.astype(np.float32), g.astype(np.float32), q_pids, g_pids,
            rng.integers(0, cams, n_q), rng.integers(0, cams, n_g))


def step(record: dict, name: str, fn, *args, **kwargs):
    """Run ``fn``; record wall and CPU seconds, load average and peak RSS under ``name``."""
    rss_before = status_mib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    load = list(os.getloadavg())
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = status_mib("VmHWM")
    record[name] = {"s": wall, "process_cpu_s": cpu, "load_average_1_5_15_min_before": load,
                    "peak_rss_mib": peak, "rss_before_mib": rss_before,
                    "peak_rss_extra_mib": None if peak is None else peak - rss_before}
    print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {peak:.0f} MiB "
          f"(+{peak - rss_before:.0f}), load {load[0]:.1f}", flush=True)
    return out


def all_pairs_pass(x: np.ndarray, chunk: int) -> None:
    blocks = DistanceBlocks(x, "euclidean")
    everything = blocks.part(slice(0, len(x)))
    with torch.no_grad():
        for s in range(0, len(x), chunk):
            blocks(blocks.part(slice(s, min(s + chunk, len(x)))), everything, ranked=True)


def query_gallery_pass(q: np.ndarray, g: np.ndarray, block: int) -> None:
    rows = embedding_rows(q, g, "euclidean")
    for s in range(0, len(q), block):
        rows.rows(s, min(s + block, len(q)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-query", type=int, default=11659)
    p.add_argument("--n-gallery", type=int, default=82161)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--ids", type=int, default=3060)
    p.add_argument("--cams", type=int, default=15)
    p.add_argument("--block-size", type=int, default=512)
    p.add_argument("--chunk-size", type=int, default=1024)
    p.add_argument("--output", type=Path,
                   default=Path(__file__).parent / "results" / "bench_scale.json")
    args = p.parse_args()
    load_start = list(os.getloadavg())

    tiny = problem(30, 90, 8, 10, 3)
    t0 = time.perf_counter()
    nb = search_neighbours(tiny[0], tiny[1], k=26)
    for fn in (None, k_reciprocal_rerank, ecn_rerank):
        evaluate_from_embeddings(*tiny, reranker=fn, block_size=16,
                                 rerank_options=None if fn is None else {"neighbours": nb})
    t_compile = time.perf_counter() - t0

    q, g, q_pids, g_pids, q_cams, g_cams = problem(args.n_query, args.n_gallery, args.dim,
                                                   args.ids, args.cams)
    ids = (q_pids, g_pids, q_cams, g_cams)
    x = np.concatenate([q, g])
    steps: dict = {}
    kw = dict(block_size=args.block_size, excluder="market1501")
    step(steps, "floor_all_pairs", all_pairs_pass, x, args.chunk_size)
    del x  # the floor's own copy; the steps below stack query and gallery themselves
    step(steps, "floor_query_gallery", query_gallery_pass, q, g, args.block_size)
    results = {"evaluation": step(steps, "evaluation", evaluate_from_embeddings, q, g, *ids,
                                  **kw).to_dict()}
    nb = step(steps, "neighbour_search", search_neighbours, q, g, k=26,
              chunk_size=args.chunk_size)
    for name, fn in (("k_reciprocal", k_reciprocal_rerank), ("ecn", ecn_rerank)):
        results[name] = step(steps, name, evaluate_from_embeddings, q, g, *ids, reranker=fn,
                             rerank_options={"neighbours": nb}, **kw).to_dict()
    floor_n, floor_qg = steps["floor_all_pairs"]["s"], steps["floor_query_gallery"]["s"]
    search = steps["neighbour_search"]["s"]
    ratios = {"evaluation_over_query_gallery_floor": steps["evaluation"]["s"] / floor_qg,
              "k_reciprocal_with_search_over_all_pairs_floor":
                  (steps["k_reciprocal"]["s"] + search) / floor_n,
              "ecn_with_search_over_all_pairs_floor": (steps["ecn"]["s"] + search) / floor_n}
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}")
    from reidcore.atomic import atomic_write_json

    record = {"n_query": args.n_query, "n_gallery": args.n_gallery, "dim": args.dim,
              "ids": args.ids, "cams": args.cams, "block_size": args.block_size,
              "chunk_size": args.chunk_size, "compile_or_cache_load_s": t_compile,
              "steps": steps, "ratios": ratios, "metrics": results,
              "threads": thread_settings(), "cpu_count": os.cpu_count(),
              "nice": os.nice(0), "load_average_1_5_15_min_at_start": load_start,
              "load_average_1_5_15_min_at_end": list(os.getloadavg())}
    atomic_write_json(args.output, record)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
