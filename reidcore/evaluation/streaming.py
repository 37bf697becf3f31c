"""Streaming evaluation: CMC, mAP and mINP from embeddings, computed in query blocks.

:func:`evaluate` needs the whole ``(n_q, n_g)`` distance matrix (3.8 GB in float32 at
MSMT17's 11,659 x 82,161). :func:`evaluate_from_embeddings` gives the same
:class:`~reidcore.evaluation.EvalResult` from the embeddings while holding only
``block_size`` rows at a time: each block of distances (the formulas of
:func:`~reidcore.evaluation.pairwise_distances`) goes straight into the rank kernel
(:mod:`reidcore.evaluation.rank_kernel`). With a re-ranker that supports
``streaming=True`` (``k-reciprocal``, reid-pse's ``ecn`` and ``ecn-orig``) the
re-ranked rows are produced block by block the same way; :func:`evaluate_rows` ranks
any such row source.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from reidcore.evaluation.metrics import EvalResult, RankProblem
from reidcore.evaluation.protocols import Excluder

__all__ = ["DistanceRows", "embedding_rows", "evaluate_from_embeddings", "evaluate_rows",
           "supports_streaming"]


@attrs.frozen
class DistanceRows:
    """A ``(n_q, n_g)`` distance matrix given block by block.

    Attributes:
        shape: ``(n_q, n_g)``.
        rows: ``rows(start, stop)`` -> ``(stop - start, n_g)`` float32 array, the
            distances of queries ``start .. stop - 1`` (smaller = more similar).
    """

    shape: tuple[int, int]
    rows: Callable[[int, int], np.ndarray]

    def dense(self, block_size: int = 1024) -> np.ndarray:
        """The whole ``(n_q, n_g)`` float32 matrix (memory ``4 n_q n_g`` bytes)."""
        n_q, n_g = self.shape
        out = np.empty((n_q, n_g), dtype=np.float32)
        for s in range(0, n_q, block_size):
            e = min(s + block_size, n_q)
            out[s:e] = self.rows(s, e)
        return out


def embedding_rows(query: Any, gallery: Any, metric: str = "euclidean",
                   device: Any = None) -> DistanceRows:
    """:class:`DistanceRows` of :func:`~reidcore.evaluation.pairwise_distances` (same
    metric formulas, float32), computed per block with torch.

    Raises:
        ValueError: as :func:`~reidcore.evaluation.pairwise_distances`.
    """
    import torch

    from reidcore.evaluation.distances import METRICS, _as_matrix

    try:
        fn = METRICS[metric]
    except KeyError:
        raise ValueError(f"Unknown metric {metric!r}; known metrics: {', '.join(METRICS)}"
                         ) from None
    dev = torch.device(device) if device is not None else torch.device("cpu")
    q = _as_matrix(query, "query", dev)
    g = _as_matrix(gallery, "gallery", dev)
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"query and gallery embeddings differ in dimension: query has shape "
            f"{tuple(q.shape)}, gallery has shape {tuple(g.shape)}"
        )

    def rows(start: int, stop: int) -> np.ndarray:
        with torch.no_grad():
            return fn(q[start:stop], g).cpu().numpy()

    return DistanceRows((int(q.shape[0]), int(g.shape[0])), rows)


def evaluate_rows(
    distances: DistanceRows,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    excluder: str | Excluder | Callable[..., np.ndarray] = "market1501",
    max_rank: int = 50,
    *,
    ap: str = "step",
    average: str = "valid",
    repeats: int = 10,
    seed: int = 0,
    block_size: int = 1024,
) -> EvalResult:
    """:func:`~reidcore.evaluation.evaluate` of a matrix given block by block.

    Args:
        distances: the rows (:class:`DistanceRows`).
        block_size: queries ranked at a time (memory ``block_size * n_g`` floats).
        others: as :func:`~reidcore.evaluation.evaluate`.

    Returns and raises as :func:`~reidcore.evaluation.evaluate` (the values are the
    same as ``evaluate(distances.dense(), ...)``); ``ValueError`` also for
    ``block_size < 1``.
    """
    problem = RankProblem.build(distances.shape, q_pids, g_pids, q_camids, g_camids,
                                excluder, max_rank, ap=ap, average=average, repeats=repeats,
                                seed=seed, what=("query rows", "gallery columns"))
    return problem.result(problem.rank(distances.rows, block_size))


def supports_streaming(reranker: Callable[..., Any]) -> bool:
    """Whether the re-ranker accepts ``streaming=True`` (then it returns
    :class:`DistanceRows` instead of the matrix)."""
    try:
        return "streaming" in inspect.signature(reranker).parameters
    except (TypeError, ValueError):
        return False


def evaluate_from_embeddings(
    query_embs: Any,
    gallery_embs: Any,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    excluder: str | Excluder | Callable[..., np.ndarray] = "market1501",
    max_rank: int = 50,
    *,
    metric: str = "euclidean",
    ap: str = "step",
    average: str = "valid",
    repeats: int = 10,
    seed: int = 0,
    block_size: int = 512,
    device: Any = None,
    reranker: Callable[..., Any] | None = None,
    rerank_options: dict[str, Any] | None = None,
) -> EvalResult:
    """CMC, mAP and mINP from query and gallery embeddings, in query blocks, never holding
    the ``(n_q, n_g)`` matrix.

    Args:
        query_embs: ``(n_q, D)``, gallery_embs: ``(n_g, D)`` embeddings (tensor or array,
            any real dtype; float32 inside).
        q_pids, q_camids, g_pids, g_camids, excluder, max_rank, ap, average, repeats,
            seed: as :func:`~reidcore.evaluation.evaluate`.
        metric: a :data:`~reidcore.evaluation.METRICS` name (``euclidean`` default).
        block_size: queries per block (memory about ``2 * block_size * n_g`` floats).
        device: torch device of the distance blocks (``None``: the CPU).
        reranker: optional re-ranker ``f(query, gallery, *, metric, **options)``, e.g.
            :func:`~reidcore.evaluation.rerank_kreciprocal.k_reciprocal_rerank`; called with
            ``streaming=True`` when it accepts it (:func:`supports_streaming`), else its
            whole matrix is evaluated.
        rerank_options: keyword arguments of the re-ranker (e.g. ``neighbours``, ``k1``).

    Returns:
        :class:`~reidcore.evaluation.EvalResult`, the same values as
        ``evaluate(pairwise_distances(query_embs, gallery_embs, metric), ...)`` (or of the
        re-ranked matrix).

    Raises:
        ValueError: as :func:`~reidcore.evaluation.pairwise_distances` and
            :func:`~reidcore.evaluation.evaluate`; ``block_size < 1``.
        UnknownNameError, EvaluationError: as :func:`~reidcore.evaluation.evaluate`.
    """
    from reidcore.evaluation.metrics import evaluate

    if reranker is None:
        rows = embedding_rows(query_embs, gallery_embs, metric, device)
    else:
        options = dict(rerank_options or {})
        if not supports_streaming(reranker):
            d = reranker(query_embs, gallery_embs, metric=metric, **options)
            return evaluate(d, q_pids, g_pids, q_camids, g_camids, excluder, max_rank, ap=ap,
                            average=average, repeats=repeats, seed=seed)
        rows = reranker(query_embs, gallery_embs, metric=metric, streaming=True, **options)
    return evaluate_rows(rows, q_pids, g_pids, q_camids, g_camids, excluder, max_rank, ap=ap,
                         average=average, repeats=repeats, seed=seed, block_size=block_size)
