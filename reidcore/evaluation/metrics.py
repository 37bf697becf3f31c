"""CMC and mAP of a query-by-gallery distance matrix.

Follows the Market-1501 evaluation protocol (Zheng et al., "Scalable Person
Re-identification: A Benchmark", ICCV 2015) with the average precision of
scikit-learn >= 0.19 ``average_precision_score`` (no interpolation; the same as
torchreid and fast-reid), which is about one mAP point above the official MATLAB
code and scikit-learn <= 0.18 (see triplet-reid's README on the change).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from reidcore.errors import EvaluationError
from reidcore.evaluation.protocols import Excluder, get_excluder

__all__ = ["EvalResult", "evaluate", "format_table"]

#: CMC ranks reported by :meth:`EvalResult.to_dict` and :func:`format_table`.
REPORTED_RANKS = (1, 5, 10, 20)


def _readonly_float64(x: Any) -> np.ndarray:
    a = np.array(x, dtype=np.float64)
    a.setflags(write=False)
    return a


@attrs.frozen
class EvalResult:
    """Result of :func:`evaluate`.

    Attributes:
        cmc: ``(max_rank,)`` float64, read-only; ``cmc[k-1]`` is the fraction of valid
            queries whose first correct match is within the top ``k``.
        mAP: mean over valid queries of the average precision, in ``[0, 1]``.
        num_queries: rows of the distance matrix.
        num_valid_queries: queries with at least one correct match after exclusion;
            ``cmc`` and ``mAP`` are averages over these.
        num_skipped: ``num_queries - num_valid_queries``.
        excluder: the protocol's name (or the custom excluder's function name).
    """

    cmc: np.ndarray = attrs.field(converter=_readonly_float64,
                                  eq=attrs.cmp_using(eq=np.array_equal))
    mAP: float
    num_queries: int
    num_valid_queries: int
    num_skipped: int
    excluder: str

    def rank(self, k: int) -> float:
        """CMC at rank ``k`` (1-based), as a fraction.

        Raises:
            ValueError: ``k`` is outside ``1..max_rank``.
        """
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank {k} is outside 1..{len(self.cmc)} (max_rank)")
        return float(self.cmc[k - 1])

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary for JSON: ``rank1``, ``rank5``, ``rank10``, ``rank20``
        and ``mAP`` as fractions in ``[0, 1]``, the three query counts and ``excluder``.

        A ``rankK`` with ``K > max_rank`` is left out.
        """
        out: dict[str, Any] = {
            f"rank{k}": float(self.cmc[k - 1]) for k in REPORTED_RANKS if k <= len(self.cmc)
        }
        out.update(
            mAP=float(self.mAP),
            num_queries=int(self.num_queries),
            num_valid_queries=int(self.num_valid_queries),
            num_skipped=int(self.num_skipped),
            excluder=self.excluder,
        )
        return out


def _vector(x: Any, name: str, n: int, n_name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or len(a) != n:
        raise ValueError(
            f"{name} must be a 1-D array of length {n} ({n_name}), got shape {a.shape}"
        )
    return a


def _no_valid_query_message(name: str, n_q: int, n_with_gallery_match: int) -> str:
    if n_with_gallery_match == 0:
        return (
            f"No valid query: none of the {n_q} queries has a gallery image of its identity "
            f"(no query pid occurs among the gallery pids). Are query and gallery from the "
            f"same dataset, and are the pids read the same way for both?"
        )
    msg = (
        f"No valid query: every gallery match of every query was excluded by the {name!r} "
        f"excluder ({n_with_gallery_match} of {n_q} queries have gallery images of their "
        f"identity, but none is left after exclusion)."
    )
    if name == "market1501":
        msg += (
            " market1501 ignores matches taken by the query's own camera and junk (pid -1),"
            " so every match shares its query's camera: is this a single-camera dataset"
            " or are the camera ids wrong? Try --excluder none, or diagonal when the query"
            " set is the gallery set."
        )
    return msg


def evaluate(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    excluder: str | Excluder | Callable[..., np.ndarray] = "market1501",
    max_rank: int = 50,
) -> EvalResult:
    """CMC curve and mAP of a distance matrix under an evaluation protocol.

    For each query the gallery is sorted by ascending distance with a *stable* sort, so
    equal distances are ranked by gallery index (lower index first); the items the
    excluder masks are then removed from the ranking. A query with no correct match
    (same pid) left is skipped and counted in ``num_skipped``. For the others:

    * CMC: ``cmc[k-1]`` is the fraction of them whose first correct match is at rank
      ``<= k``;
    * AP: the mean, over the query's correct matches, of the precision at the rank of
      each match (non-interpolated "step" AP, as scikit-learn >= 0.19
      ``average_precision_score`` without ties, torchreid and fast-reid).

    Args:
        distmat: ``(n_q, n_g)`` distances (smaller = more similar), e.g. from
            :func:`~reidcore.evaluation.pairwise_distances`; must not contain NaN.
        q_pids, q_camids: ``(n_q,)`` integer identities and cameras of the queries.
        g_pids, g_camids: ``(n_g,)`` integer identities and cameras of the gallery.
        excluder: a name in :data:`~reidcore.evaluation.EXCLUDERS` (``"market1501"``,
            ``"diagonal"``, ``"none"``) or an excluder callable.
        max_rank: length of the returned CMC curve.

    Returns:
        :class:`EvalResult`.

    Raises:
        ValueError: ``distmat`` is not 2-D or holds NaN; an id array's length does not
            match ``distmat`` (the message names the array); ``max_rank < 1``;
            ``excluder="diagonal"`` with ``n_q != n_g``; an excluder returns a mask of
            the wrong shape.
        UnknownNameError: unknown excluder name.
        EvaluationError: no valid query at all (the message says why).
    """
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be a 2-D (n_q, n_g) array, got shape {distmat.shape}")
    n_q, n_g = distmat.shape
    q_pids = _vector(q_pids, "q_pids", n_q, "distmat rows")
    q_camids = _vector(q_camids, "q_camids", n_q, "distmat rows")
    g_pids = _vector(g_pids, "g_pids", n_g, "distmat columns")
    g_camids = _vector(g_camids, "g_camids", n_g, "distmat columns")
    if max_rank < 1:
        raise ValueError(f"max_rank must be at least 1, got {max_rank}")
    if np.isnan(distmat).any():
        raise ValueError("distmat contains NaN; were the embeddings finite?")
    if isinstance(excluder, str):
        name, exclude = excluder, get_excluder(excluder)
        if name == "diagonal" and n_q != n_g:
            raise ValueError(
                f"the diagonal excluder needs the query set to be the gallery set, but "
                f"distmat has shape {distmat.shape}"
            )
    else:
        name, exclude = getattr(excluder, "__name__", repr(excluder)), excluder
    if n_q == 0 or n_g == 0:
        raise EvaluationError(f"No valid query: distmat has shape {distmat.shape}.")

    cmc_counts = np.zeros(max_rank, dtype=np.int64)
    ap_sum = 0.0
    num_valid = 0
    n_with_gallery_match = 0
    for i in range(n_q):
        ignore = np.asarray(exclude(q_pids[i], q_camids[i], g_pids, g_camids, i), dtype=bool)
        if ignore.shape != (n_g,):
            raise ValueError(
                f"excluder {name!r} returned a mask of shape {ignore.shape} for query {i}, "
                f"expected ({n_g},)"
            )
        order = np.argsort(distmat[i], kind="stable")  # ties: lower gallery index first
        order = order[~ignore[order]]
        hits = np.flatnonzero(g_pids[order] == q_pids[i])  # 0-based ranks of correct matches
        if hits.size == 0:
            n_with_gallery_match += bool((g_pids == q_pids[i]).any())
            continue
        n_with_gallery_match += 1
        num_valid += 1
        if hits[0] < max_rank:
            cmc_counts[hits[0]:] += 1
        ap_sum += float(np.mean(np.arange(1, hits.size + 1) / (hits + 1.0)))

    if num_valid == 0:
        raise EvaluationError(_no_valid_query_message(name, n_q, n_with_gallery_match))
    return EvalResult(
        cmc=cmc_counts / num_valid,
        mAP=ap_sum / num_valid,
        num_queries=n_q,
        num_valid_queries=num_valid,
        num_skipped=n_q - num_valid,
        excluder=name,
    )


def format_table(result: EvalResult) -> str:
    """A small text table of ``result``: CMC rank-1/5/10/20 and mAP in percent with one
    decimal, and the valid/skipped query counts. Ranks above ``max_rank`` are left out.
    """
    rows = [(f"rank-{k}", result.rank(k)) for k in REPORTED_RANKS if k <= len(result.cmc)]
    rows.append(("mAP", result.mAP))
    lines = [f"Evaluation ({result.excluder} protocol)", f"  {'metric':<8} {'value':>6}"]
    lines += [f"  {label:<8} {100.0 * value:>5.1f}%" for label, value in rows]
    lines.append(
        f"  queries: {result.num_valid_queries} valid, {result.num_skipped} skipped "
        f"(of {result.num_queries})"
    )
    return "\n".join(lines)
