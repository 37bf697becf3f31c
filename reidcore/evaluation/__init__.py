"""Evaluation of re-ID embeddings: distance matrices, protocols (excluders), CMC and mAP.

Typical use::

    from reidcore.evaluation import pairwise_distances, evaluate, format_table

    d = pairwise_distances(query_embs, gallery_embs, metric="euclidean")
    result = evaluate(d, q_pids, g_pids, q_camids, g_camids, excluder="market1501")
    print(format_table(result))

or, in query blocks without the ``(n_q, n_g)`` matrix (same values; :mod:`.streaming`)::

    result = evaluate_from_embeddings(query_embs, gallery_embs, q_pids, g_pids, q_camids,
                                      g_camids, excluder="market1501", metric="euclidean")

The Market-1501 protocol follows Zheng et al., "Scalable Person Re-identification:
A Benchmark", ICCV 2015; mAP is the non-interpolated AP of scikit-learn >= 0.19
(``ap="step"``) or the official MATLAB code's trapezoid AP (``ap="trapezoid"``);
CMC, both APs and mINP come from one numba kernel (:mod:`.rank_kernel`).
"""

from __future__ import annotations

from reidcore.evaluation.distances import METRICS, pairwise_distances
from reidcore.evaluation.metrics import (
    AP_DEFINITIONS,
    AVERAGES,
    EvalResult,
    evaluate,
    format_table,
)
from reidcore.evaluation.neighbours import Neighbours, search_neighbours
from reidcore.evaluation.protocols import (
    BUILTIN_EXCLUDERS,
    EXCLUDERS,
    Excluder,
    exclude_cuhk03,
    exclude_diagonal,
    exclude_market1501,
    exclude_none,
    get_excluder,
)
from reidcore.evaluation.streaming import DistanceRows, evaluate_from_embeddings, evaluate_rows
from reidcore.threads import start_numba_threads

start_numba_threads()  # before any kernel runs: numba's pool start changes torch's threads

__all__ = [
    "AP_DEFINITIONS",
    "AVERAGES",
    "BUILTIN_EXCLUDERS",
    "EXCLUDERS",
    "METRICS",
    "DistanceRows",
    "EvalResult",
    "Excluder",
    "Neighbours",
    "evaluate",
    "evaluate_from_embeddings",
    "evaluate_rows",
    "exclude_cuhk03",
    "exclude_diagonal",
    "exclude_market1501",
    "exclude_none",
    "format_table",
    "get_excluder",
    "pairwise_distances",
    "search_neighbours",
]
