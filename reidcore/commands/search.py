"""``python -m reidcore search``: each query's top-k gallery images, for galleries of millions.

Reads two embeddings files (:func:`reidcore.embeddings.read_embeddings`) and writes, for
every query, its ``--top-k`` nearest gallery images (rank, gallery index and path,
distance) as CSV.

* ``--index exact`` (default): exact distances (the formulas of
  :func:`~reidcore.evaluation.pairwise_distances`) in query blocks, ties by lower gallery
  index; memory ``--block-size * n_g`` floats besides the embeddings.
* ``--index ivf`` / ``hnsw``: an approximate faiss index (Johnson, Douze & Jégou,
  "Billion-scale similarity search with GPUs", 2019; ``pip install 'reidcore[search]'``):
  ``IndexIVFFlat`` (``--nlist`` k-means cells, ``--nprobe`` searched) or
  ``IndexHNSWFlat`` (Malkov & Yashunin, TPAMI 2020; ``--hnsw-m``, ``--ef-search``). The
  index is built once and saved beside the gallery (``G.h5.<kind>-<metric>-<params>.faiss``
  with a ``.json`` record of the gallery file it was built from); a later search reuses
  it while the gallery file is unchanged. ``euclidean`` and ``sqeuclidean`` search L2,
  ``cosine`` the inner product of unit vectors (``cityblock``: exact only). The command
  then measures recall@k against exact search on ``--recall-sample`` queries and prints
  it.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reidcore.errors import ReidError

DESCRIPTION = "each query's top-k gallery images (exact, or a saved faiss IVF/HNSW index)"
INDEXES = ("exact", "ivf", "hnsw")
SEARCH_HINT = "pip install 'reidcore[search]' (faiss-cpu)"


class SearchError(ReidError):
    """Bad input to the search command (the message names the file or value)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reidcore search", description=DESCRIPTION)
    p.add_argument("--gallery", type=Path, required=True, help="gallery embeddings (.h5)")
    p.add_argument("--query", type=Path, required=True, help="query embeddings (.h5)")
    p.add_argument("--top-k", type=int, default=100, help="results per query [100]")
    p.add_argument("--output", type=Path,
                   help="CSV of the results [QUERY's folder/QUERY-stem.search.csv]")
    p.add_argument("--metric", choices=("euclidean", "sqeuclidean", "cosine", "cityblock"),
                   default="euclidean", help="[euclidean]")
    p.add_argument("--index", choices=INDEXES, default="exact", help="[exact]")
    p.add_argument("--nlist", type=int, default=None,
                   help="ivf: k-means cells [4 sqrt(n_g), at most n_g / 39]")
    p.add_argument("--nprobe", type=int, default=32, help="ivf: cells searched [32]")
    p.add_argument("--hnsw-m", type=int, default=32, help="hnsw: links per node [32]")
    p.add_argument("--ef-search", type=int, default=128, help="hnsw: search breadth [128]")
    p.add_argument("--recall-sample", type=int, default=1000,
                   help="queries whose recall@k against exact search is measured for an "
                        "approximate index (0: none) [1000]")
    p.add_argument("--block-size", type=int, default=64,
                   help="queries per exact distance block [64]")
    p.add_argument("--rebuild", action="store_true", help="rebuild a saved index")
    return p


def exact_search(query: np.ndarray, gallery: np.ndarray, k: int, metric: str = "euclidean",
                 block_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k``: ``(indices (n_q, k) int64, distances (n_q, k) float32)`` by
    ascending distance, ties by lower gallery index (the metrics of
    :func:`~reidcore.evaluation.pairwise_distances`; memory ``block_size * n_g`` floats).

    Raises:
        ValueError: unknown metric, shapes that disagree, ``k`` outside ``[1, n_g]`` or
            ``block_size < 1``.
    """
    import torch

    from reidcore.evaluation.distances import METRICS
    from reidcore.evaluation.neighbours import DistanceBlocks, nearest

    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; known metrics: {', '.join(METRICS)}")
    q = np.ascontiguousarray(query, dtype=np.float32)
    g = np.ascontiguousarray(gallery, dtype=np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"query and gallery must be (n, D) with the same D, got "
                         f"{q.shape} and {g.shape}")
    if not 1 <= k <= g.shape[0]:
        raise ValueError(f"top-k must be in [1, {g.shape[0]}] (the gallery size), got {k}")
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    # gallery norms (or unit vectors) once, one reused distance buffer
    gb, qb = DistanceBlocks(g, metric), DistanceBlocks(q, metric)
    everything = gb.part(slice(0, g.shape[0]))
    idx = np.empty((q.shape[0], k), np.int64)
    dist = np.empty((q.shape[0], k), np.float32)
    with torch.no_grad():
        for s in range(0, q.shape[0], block_size):
            e = min(s + block_size, q.shape[0])
            d = gb(qb.part(slice(s, e)), everything)
            idx[s:e] = nearest(d, k)
            dist[s:e] = np.take_along_axis(d.numpy(), idx[s:e], axis=1)
    return idx, dist


def _index_spec(args: argparse.Namespace, n_g: int) -> dict[str, Any]:
    if args.metric == "cityblock":
        raise SearchError("--metric cityblock has no faiss index: use --index exact")
    spec: dict[str, Any] = {"index": args.index, "metric": args.metric}
    if args.index == "ivf":
        nlist = args.nlist or int(min(max(1, round(4 * np.sqrt(n_g))), max(1, n_g // 39)))
        if not 1 <= nlist <= n_g:
            raise SearchError(f"--nlist must be in [1, {n_g}] (the gallery size), got {nlist}")
        spec["nlist"] = nlist
    else:
        if args.hnsw_m < 2:
            raise SearchError(f"--hnsw-m must be at least 2, got {args.hnsw_m}")
        spec["hnsw_m"] = args.hnsw_m
    return spec


def _faiss():
    try:
        import faiss
    except ImportError:
        raise SearchError(f"--index ivf/hnsw needs faiss: {SEARCH_HINT}") from None
    return faiss


def _prepared(x: np.ndarray, metric: str) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)
    return x


def build_index(gallery: np.ndarray, spec: dict[str, Any], seed: int = 0):
    """A faiss index of ``gallery`` for ``spec`` (``index``: ``ivf`` with ``nlist``, or
    ``hnsw`` with ``hnsw_m``; ``metric``). IVF's k-means trains on at most ``64 nlist``
    gallery rows drawn with ``seed``."""
    faiss = _faiss()
    x = _prepared(gallery, spec["metric"])
    dim = x.shape[1]
    inner = spec["metric"] == "cosine"
    mtype = faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2
    if spec["index"] == "ivf":
        quantizer = faiss.IndexFlatIP(dim) if inner else faiss.IndexFlatL2(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, spec["nlist"], mtype)
        rng = np.random.default_rng(seed)
        n_train = min(len(x), 64 * spec["nlist"])
        sample = x[np.sort(rng.choice(len(x), n_train, replace=False))]
        index.train(sample)
    else:
        index = faiss.IndexHNSWFlat(dim, spec["hnsw_m"], mtype)
    for s in range(0, len(x), 65536):  # add in pieces: no second full copy of the gallery
        index.add(x[s:s + 65536])
    return index


def approximate_search(index, query: np.ndarray, k: int, spec: dict[str, Any], nprobe: int,
                       ef_search: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, distances)`` from a faiss index, distances in the metric's units (a
    missing result, possible with IVF, has index -1 and distance inf)."""
    faiss = _faiss()
    if spec["index"] == "ivf":
        index.nprobe = nprobe
    else:
        faiss.downcast_index(index).hnsw.efSearch = ef_search
    d, idx = index.search(_prepared(query, spec["metric"]), k)
    d = d.astype(np.float32)
    if spec["metric"] == "euclidean":
        d = np.sqrt(np.maximum(d, 0.0))
    elif spec["metric"] == "cosine":
        d = 1.0 - d
    missing = idx < 0
    d[missing] = np.inf
    return idx.astype(np.int64), d


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of ``|approx row ∩ exact row| / k``."""
    k = exact.shape[1]
    hits = [len(np.intersect1d(a[a >= 0], e)) for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(hits)) / k


def _index_files(gallery_path: Path, spec: dict[str, Any]) -> tuple[Path, Path]:
    params = "-".join(f"{k}{v}" for k, v in spec.items() if k not in ("index", "metric"))
    stem = f"{gallery_path.name}.{spec['index']}-{spec['metric']}-{params}"
    return gallery_path.with_name(stem + ".faiss"), gallery_path.with_name(stem + ".json")


def _gallery_stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"gallery": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def load_or_build_index(gallery_path: Path, gallery: np.ndarray, spec: dict[str, Any],
                        rebuild: bool = False):
    """``(index, built: bool, seconds)``: the saved index beside ``gallery_path`` when its
    record matches the gallery file (size, modification time) and ``spec``, else a new
    one, saved atomically (:mod:`reidcore.atomic`)."""
    from reidcore.atomic import atomic_path, atomic_write_json

    faiss = _faiss()
    index_path, record_path = _index_files(gallery_path, spec)
    stamp = {**_gallery_stamp(gallery_path), **spec, "faiss": faiss.__version__}
    if not rebuild and index_path.exists() and record_path.exists():
        try:
            same = json.loads(record_path.read_text()) == stamp
        except (OSError, ValueError):
            same = False
        if same:
            t0 = time.perf_counter()
            return faiss.read_index(str(index_path)), False, time.perf_counter() - t0
    t0 = time.perf_counter()
    index = build_index(gallery, spec)
    seconds = time.perf_counter() - t0
    with atomic_path(index_path) as tmp:
        faiss.write_index(index, str(tmp))
    atomic_write_json(record_path, stamp)
    return index, True, seconds


def write_results(path: Path, idx: np.ndarray, dist: np.ndarray,
                  query_paths: Sequence[str] | None, gallery_paths: Sequence[str] | None) -> None:
    """CSV ``query_index, query_path, rank, gallery_index, gallery_path, distance`` (rank
    1-based; paths empty when the embeddings file has none), written atomically."""
    from reidcore.atomic import atomic_open

    with atomic_open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query_index", "query_path", "rank", "gallery_index", "gallery_path",
                    "distance"])
        for i in range(idx.shape[0]):
            qp = query_paths[i] if query_paths is not None else ""
            for r in range(idx.shape[1]):
                j = int(idx[i, r])
                if j < 0:
                    continue
                gp = gallery_paths[j] if gallery_paths is not None else ""
                w.writerow([i, qp, r + 1, j, gp, f"{float(dist[i, r]):.6g}"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Search as the command line asks; returns a summary (also printed)."""
    from reidcore.embeddings import EmbeddingsError, read_embeddings

    if args.top_k < 1:
        raise SearchError(f"--top-k must be at least 1, got {args.top_k}")
    if args.block_size < 1:
        raise SearchError(f"--block-size must be at least 1, got {args.block_size}")
    if args.recall_sample < 0:
        raise SearchError(f"--recall-sample must be >= 0, got {args.recall_sample}")
    try:
        gallery, query = read_embeddings(args.gallery), read_embeddings(args.query)
    except EmbeddingsError as exc:
        raise SearchError(str(exc)) from exc
    n_g = len(gallery)
    if gallery.embs.shape[1] != query.embs.shape[1]:
        raise SearchError(f"{args.query} has {query.embs.shape[1]}-D embeddings but "
                          f"{args.gallery} has {gallery.embs.shape[1]}-D ones")
    if args.top_k > n_g:
        raise SearchError(f"--top-k {args.top_k} is larger than the gallery "
                          f"({args.gallery}: {n_g} images)")
    output = args.output or args.query.with_name(args.query.stem + ".search.csv")
    summary: dict[str, Any] = {"index": args.index, "metric": args.metric, "top_k": args.top_k,
                               "n_query": len(query), "n_gallery": n_g}
    t0 = time.perf_counter()
    if args.index == "exact":
        idx, dist = exact_search(query.embs, gallery.embs, args.top_k, args.metric,
                                 args.block_size)
        summary["search_s"] = time.perf_counter() - t0
    else:
        spec = _index_spec(args, n_g)
        index, built, seconds = load_or_build_index(args.gallery, gallery.embs, spec,
                                                    args.rebuild)
        summary.update({"index_built": built, ("build_s" if built else "load_s"): seconds,
                        **spec})
        t0 = time.perf_counter()
        idx, dist = approximate_search(index, query.embs, args.top_k, spec, args.nprobe,
                                       args.ef_search)
        summary["search_s"] = time.perf_counter() - t0
        if args.recall_sample:
            rng = np.random.default_rng(0)
            n = min(args.recall_sample, len(query))
            sample = np.sort(rng.choice(len(query), n, replace=False))
            exact, _ = exact_search(query.embs[sample], gallery.embs, args.top_k, args.metric,
                                    args.block_size)
            summary[f"recall_at_{args.top_k}"] = recall_at_k(idx[sample], exact)
            summary["recall_sample"] = n
    write_results(output, idx, dist, query.paths, gallery.paths)
    summary["output"] = str(output)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        summary = run(args)
    except SearchError as exc:
        raise SystemExit(f"search: {exc}") from None
    for key, value in summary.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    return 0
