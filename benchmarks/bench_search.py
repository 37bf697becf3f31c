"""Benchmark: ``search`` on a synthetic gallery of a million images: a faiss IVF index
against exact search.

A clustered synthetic gallery (``--n-gallery`` images, ``--dim`` dimensions,
``--n-gallery / --per-id`` identities: unit-normal centres plus normal noise of sd
``--noise``) and ``--n-query`` queries of the same identities. Times, with the process's
peak RSS (VmHWM) after each step:

* building the IVF index (:func:`reidcore.commands.search.build_index`: k-means on
  ``64 nlist`` rows, then adding the gallery) and writing it to disk;
* querying it at several ``nprobe`` values (top-``--top-k``), with recall@k against
* exact search of the same queries (:func:`reidcore.commands.search.exact_search`).

    nice -n 10 python benchmarks/bench_search.py [--n-gallery 1000000 --dim 256]

Writes ``benchmarks/results/bench_search.json`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from proc_memory import status_mib

from reidcore.commands.search import (
    approximate_search,
    build_index,
    exact_search,
    recall_at_k,
)
from reidcore.threads import thread_settings


def gallery_and_queries(n_g: int, n_q: int, dim: int, per_id: int, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = max(1, n_g // per_id)
    centres = rng.normal(size=(ids, dim)).astype(np.float32)
    g = np.empty((n_g, dim), np.float32)
    for s in range(0, n_g, 100_000):  # in pieces: no float64 copy of the whole gallery
        e = min(s + 100_000, n_g)
        g[s:e] = centres[rng.integers(0, ids, e - s)]
        g[s:e] += noise * rng.standard_normal((e - s, dim), dtype=np.float32)
    q = centres[rng.integers(0, ids, n_q)] + noise * rng.standard_normal((n_q, dim),
                                                                        dtype=np.float32)
    return g, q.astype(np.float32)


def timed(record: dict, name: str, fn, *args, **kwargs):
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    record[name] = {"s": time.perf_counter() - t0, "process_cpu_s": time.process_time() - c0,
                    "load_average_1_min_before": load, "peak_rss_mib_so_far": status_mib("VmHWM")}
    print(f"{name}: {record[name]['s']:.1f} s wall, {record[name]['process_cpu_s']:.1f} s CPU, "
          f"peak RSS so far {record[name]['peak_rss_mib_so_far']:.0f} MiB, load {load:.1f}",
          flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-gallery", type=int, default=1_000_000)
    p.add_argument("--n-query", type=int, default=1000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--per-id", type=int, default=10)
    p.add_argument("--noise", type=float, default=0.5)
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", type=int, nargs="+", default=[8, 32, 64])
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--output", type=Path,
                   default=Path(__file__).parent / "results" / "bench_search.json")
    args = p.parse_args()
    import faiss

    load_start = list(os.getloadavg())
    steps: dict = {}
    g, q = timed(steps, "generate", gallery_and_queries, args.n_gallery, args.n_query,
                 args.dim, args.per_id, args.noise)
    spec = {"index": "ivf", "metric": "euclidean", "nlist": args.nlist}
    index = timed(steps, "build_ivf", build_index, g, spec)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gallery.ivf.faiss"
        timed(steps, "write_index", faiss.write_index, index, str(path))
        index_mib = path.stat().st_size / 2**20
    exact, _ = timed(steps, "exact_search", exact_search, q, g, args.top_k, "euclidean", 64)
    sweeps = []
    for nprobe in args.nprobe:
        name = f"ivf_search_nprobe_{nprobe}"
        idx, _ = timed(steps, name, approximate_search, index, q, args.top_k, spec, nprobe, 0)
        sweeps.append({"nprobe": nprobe, "s": steps[name]["s"],
                       f"recall_at_{args.top_k}": recall_at_k(idx, exact)})
        print(f"nprobe {nprobe}: recall@{args.top_k} {sweeps[-1][f'recall_at_{args.top_k}']:.4f}")
    from reidcore.atomic import atomic_write_json

    record = {"n_gallery": args.n_gallery, "n_query": args.n_query, "dim": args.dim,
              "per_id": args.per_id, "noise": args.noise, "nlist": args.nlist,
              "top_k": args.top_k, "faiss": faiss.__version__, "index_file_mib": index_mib,
              "steps": steps, "ivf": sweeps, "peak_rss_mib": status_mib("VmHWM"),
              "threads": thread_settings(), "faiss_threads": faiss.omp_get_max_threads(),
              "cpu_count": os.cpu_count(), "nice": os.nice(0),
              "load_average_1_5_15_min_at_start": load_start,
              "load_average_1_5_15_min_at_end": list(os.getloadavg())}
    atomic_write_json(args.output, record)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
