"""One path from query and gallery embeddings to a report: :func:`evaluate_embeddings`.

``run``, ``evaluate``, :func:`evaluate_video` and ``visualize`` all
score embeddings through it, with :class:`EvalSettings` (metric, excluder/protocol, AP,
averaging, video pooling, re-ranking). An experiment's settings come from its config
(:meth:`EvalSettings.from_config`), so a later ``evaluate --experiment`` scores it as ``run``
did unless a flag overrides them.

The work is done by the public functions :func:`~reidcore.evaluation.pairwise_distances`,
:func:`~reidcore.evaluation.evaluate` and the re-rankers of the ``reid_rerankers`` registry;
this module only chains them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from reidcore.errors import EvaluationError

log = logging.getLogger("reidcore")

__all__ = ["EmbeddingSet", "EvalSettings", "evaluate_embeddings", "evaluate_sets"]


@attrs.frozen
class EvalSettings:
    """How embeddings are scored (the evaluation fields of :class:`reidcore.recipe.TrainConfig`).

    Attributes:
        metric: distance (``euclidean``, ``sqeuclidean``, ``cityblock``, ``cosine``).
        excluder: protocol name (``market1501``, ``cuhk03``, ``diagonal``, ``none``, a plugin's).
        ap: ``step`` or ``trapezoid``.
        average: ``valid`` or ``all``.
        max_rank: CMC length.
        rerank: ``none`` or a re-ranker name; its metrics are reported under ``"reranked"``.
        tracklet_pooling: ``mean`` or ``max``, for embeddings that carry tracklet ids.
    """

    metric: str = "euclidean"
    excluder: str = "market1501"
    ap: str = "step"
    average: str = "valid"
    max_rank: int = 50
    rerank: str = "none"
    tracklet_pooling: str = "mean"

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> EvalSettings:
        """Settings of a config object or ``args.json`` ``config`` dict; ``overrides`` whose
        value is not None win (command-line flags)."""
        get = config.get if isinstance(config, Mapping) else (lambda k, d: getattr(config, k, d))
        values = {f.name: get(f.name, f.default) for f in attrs.fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def describe(self) -> str:
        """One line: ``metric cosine, excluder market1501, step AP, valid average, ...``."""
        text = (f"metric {self.metric}, excluder {self.excluder}, {self.ap} AP, "
                f"{self.average} average, re-ranking {self.rerank}")
        return text + f", tracklet pooling {self.tracklet_pooling}"


@attrs.frozen
class EmbeddingSet:
    """Embeddings with the ids evaluation needs.

    Attributes:
        embs: ``(N, D)`` float32.
        pids, camids: ``(N,)`` int64.
        tracklets: ``(N,)`` tracklet ids (video datasets: pooled before ranking), or None.
    """

    embs: np.ndarray = attrs.field(eq=False)
    pids: np.ndarray = attrs.field(eq=False)
    camids: np.ndarray = attrs.field(eq=False)
    tracklets: np.ndarray | None = attrs.field(default=None, eq=False)

    @classmethod
    def of(cls, e: Any) -> EmbeddingSet:
        """From anything with ``embs``, ``pids``, ``camids`` (and maybe ``tracklets``), e.g.
        :class:`reidcore.embeddings.Embeddings`.

        Raises:
            EvaluationError: no pids or camids.
        """
        if isinstance(e, cls):
            return e
        if getattr(e, "pids", None) is None or getattr(e, "camids", None) is None:
            raise EvaluationError("embeddings without pids or camids cannot be evaluated")
        return cls(np.asarray(e.embs), np.asarray(e.pids), np.asarray(e.camids),
                   getattr(e, "tracklets", None))


def _pooled(s: EmbeddingSet, method: str) -> tuple[EmbeddingSet, bool]:
    if s.tracklets is None:
        return s, False
    from reidcore.evaluation.video import pool_tracklets

    t = pool_tracklets(s.embs, s.tracklets, s.pids, s.camids, method=method)
    return EmbeddingSet(t.embs, t.pids, t.camids), True


def evaluate_sets(query: Any, gallery: Any, settings: EvalSettings | None = None):
    """``(EvalResult, re-ranked EvalResult or None, pooled)``: the work of
    :func:`evaluate_embeddings` with the full results (the whole CMC curve)."""
    from reidcore.evaluation.streaming import evaluate_from_embeddings

    s = settings or EvalSettings()
    q, g = EmbeddingSet.of(query), EmbeddingSet.of(gallery)
    video = q.tracklets is not None and g.tracklets is not None
    if video:
        (q, _), (g, _) = _pooled(q, s.tracklet_pooling), _pooled(g, s.tracklet_pooling)
    args = (q.embs, g.embs, q.pids, g.pids, q.camids, g.camids, s.excluder, s.max_rank)
    kw = {"metric": s.metric, "ap": s.ap, "average": s.average}
    result = evaluate_from_embeddings(*args, **kw)  # query blocks: no n_q x n_g matrix held
    reranked = None
    if s.rerank != "none":
        from reidcore.registry import registry

        log.info("re-ranking with %s", s.rerank)
        reranked = evaluate_from_embeddings(*args, reranker=registry("reranker").get(s.rerank),
                                            **kw)
    return result, reranked, video


def evaluate_embeddings(query: Any, gallery: Any, settings: EvalSettings | None = None
                        ) -> dict[str, Any]:
    """Score query against gallery embeddings.

    Frames of video datasets (``tracklets`` given on both sides) are first pooled into one
    feature per tracklet (MARS protocol, :func:`~reidcore.evaluation.video.pool_tracklets`).
    Then distances (:func:`~reidcore.evaluation.pairwise_distances`), CMC/mAP/mINP
    (:func:`~reidcore.evaluation.evaluate`), and with ``settings.rerank != "none"`` the same
    metrics of the re-ranked distances.

    Args:
        query, gallery: :class:`EmbeddingSet` or objects with ``embs`` ``(N, D)``, ``pids``
            and ``camids`` ``(N,)`` (e.g. :class:`reidcore.embeddings.Embeddings`).
        settings: :class:`EvalSettings` (default: Market-1501 protocol, euclidean).

    Returns:
        :meth:`EvalResult.to_dict` plus ``"metric"``; ``"tracklet_pooling"`` for video;
        ``"reranked"`` (the same keys plus ``"reranker"``) when re-ranking.

    Raises:
        EvaluationError: missing ids, or no valid query (see :func:`evaluate`).
        UnknownNameError: unknown excluder or re-ranker.
        ValueError: bad shapes or settings.
    """
    s = settings or EvalSettings()
    result, reranked, video = evaluate_sets(query, gallery, s)
    out = {**result.to_dict(), "metric": s.metric}
    if video:
        out["tracklet_pooling"] = s.tracklet_pooling
    if reranked is not None:
        out["reranked"] = {**reranked.to_dict(), "metric": s.metric, "reranker": s.rerank}
    return out


def evaluate_video(query_features: Any, query_tracklets: Any, query_pids: Any,
                   query_camids: Any, gallery_features: Any, gallery_tracklets: Any,
                   gallery_pids: Any, gallery_camids: Any, *, pooling: str = "mean",
                   metric: str = "euclidean", **evaluate_kwargs: Any):
    """Pool query and gallery frames into tracklets and evaluate them (MARS protocol).

    Args:
        query_features, gallery_features: ``(F, D)`` frame features.
        query_tracklets, gallery_tracklets: ``(F,)`` tracklet ids of the frames.
        query_pids, query_camids, gallery_pids, gallery_camids: ``(F,)`` per frame.
        pooling: ``"mean"`` or ``"max"``.
        metric: a :data:`~reidcore.evaluation.METRICS` distance.
        evaluate_kwargs: ``excluder`` (default ``"market1501"``), ``ap``, ``average``,
            ``max_rank`` (:class:`EvalSettings`).

    Returns:
        The tracklet-level :class:`~reidcore.evaluation.EvalResult`, scored by
        :func:`evaluate_sets` as ``run`` and ``evaluate`` score video datasets.

    Raises:
        ValueError: see :func:`~reidcore.evaluation.video.pool_tracklets` and
            :func:`~reidcore.evaluation.evaluate`.
        TypeError: an unknown keyword argument.
        EvaluationError: no valid query tracklet, or tracklet ids missing.
    """
    unknown = sorted(set(evaluate_kwargs) - {"excluder", "ap", "average", "max_rank"})
    if unknown:
        raise TypeError(f"evaluate_video() got unexpected keyword arguments: {', '.join(unknown)}")
    settings = EvalSettings(metric=metric, tracklet_pooling=pooling, **evaluate_kwargs)
    for name, ids in (("query_tracklets", query_tracklets), ("gallery_tracklets", gallery_tracklets)):
        if ids is None:
            raise EvaluationError(f"{name} is needed to pool frames into tracklets")
    q = EmbeddingSet(query_features, query_pids, query_camids, np.asarray(query_tracklets))
    g = EmbeddingSet(gallery_features, gallery_pids, gallery_camids, np.asarray(gallery_tracklets))
    return evaluate_sets(q, g, settings)[0]
