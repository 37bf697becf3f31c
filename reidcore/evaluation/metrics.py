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
from reidcore.evaluation.protocols import Excluder, get_excluder, no_valid_query_message

__all__ = ["EvalResult", "RankProblem", "evaluate", "format_table"]

#: CMC ranks reported by :meth:`EvalResult.to_dict` and :func:`format_table`.
REPORTED_RANKS = (1, 5, 10, 20)

#: AP definitions of :func:`evaluate`'s ``ap``.
AP_DEFINITIONS = ("step", "trapezoid")

#: query averaging of :func:`evaluate`'s ``average``.
AVERAGES = ("valid", "all")


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
        mAP: mean of the average precision (the ``ap`` definition), in ``[0, 1]``.
        num_queries: rows of the distance matrix.
        num_valid_queries: queries with at least one correct match after exclusion;
            with ``average="valid"`` ``cmc``, ``mAP`` and ``mINP`` are means over these.
        num_skipped: ``num_queries - num_valid_queries``.
        excluder: the protocol's name (or the custom excluder's function name).
        mINP: mean inverse negative penalty (fast-reid): ``num_matches / rank of the
            last match`` per query.
        ap: ``"step"`` or ``"trapezoid"``, the AP definition of ``mAP``.
        average: ``"valid"`` or ``"all"`` (skipped queries count 0 in the denominator).
        mAP_step, mAP_trapezoid: both AP definitions' means.
    """

    cmc: np.ndarray = attrs.field(converter=_readonly_float64,
                                  eq=attrs.cmp_using(eq=np.array_equal))
    mAP: float
    num_queries: int
    num_valid_queries: int
    num_skipped: int
    excluder: str
    mINP: float = float("nan")
    ap: str = "step"
    average: str = "valid"
    mAP_step: float = float("nan")
    mAP_trapezoid: float = float("nan")

    def rank(self, k: int) -> float:
        """CMC at rank ``k`` (1-based), as a fraction.

        Raises:
            ValueError: ``k`` is outside ``1..max_rank``.
        """
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank {k} is outside 1..{len(self.cmc)} (max_rank)")
        return float(self.cmc[k - 1])

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python summary for JSON: ``rank1``, ``rank5``, ``rank10``, ``rank20``,
        ``mAP`` and ``mINP`` as fractions in ``[0, 1]``, the three query counts,
        ``excluder``, ``ap``, ``average``, ``mAP_step`` and ``mAP_trapezoid``.

        A ``rankK`` with ``K > max_rank`` is left out.
        """
        out: dict[str, Any] = {
            f"rank{k}": float(self.cmc[k - 1]) for k in REPORTED_RANKS if k <= len(self.cmc)
        }
        out.update(
            mAP=float(self.mAP),
            mINP=float(self.mINP),
            num_queries=int(self.num_queries),
            num_valid_queries=int(self.num_valid_queries),
            num_skipped=int(self.num_skipped),
            excluder=self.excluder,
            ap=self.ap,
            average=self.average,
            mAP_step=float(self.mAP_step),
            mAP_trapezoid=float(self.mAP_trapezoid),
        )
        return out


def _vector(x: Any, name: str, n: int, n_name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or len(a) != n:
        raise ValueError(
            f"{name} must be a 1-D array of length {n} ({n_name}), got shape {a.shape}"
        )
    return a


def _groups(q_pids: np.ndarray, g_pids: np.ndarray):
    """Gallery indices grouped by pid (stable), each query's slice, every group's start."""
    order = np.argsort(g_pids, kind="stable").astype(np.int64)
    sorted_pids = g_pids[order]
    uniq, starts = np.unique(sorted_pids, return_index=True)
    grp_starts = np.append(starts, len(g_pids)).astype(np.int64)
    q_start = np.searchsorted(sorted_pids, q_pids, side="left").astype(np.int64)
    q_stop = np.searchsorted(sorted_pids, q_pids, side="right").astype(np.int64)
    return order, q_start, q_stop, grp_starts


def _resolve_excluder(excluder: Any) -> tuple[str, str, Callable[..., np.ndarray] | None]:
    """``(name, kernel code name, callable or None)`` of an excluder argument."""
    from reidcore.evaluation import protocols

    builtin = {fn: name for name, fn in protocols.BUILTIN_EXCLUDERS.items()}
    if isinstance(excluder, str):
        if excluder in protocols.BUILTIN_EXCLUDERS:
            return excluder, excluder, None
        fn = get_excluder(excluder)
        if fn in builtin:
            return excluder, builtin[fn], None
        return excluder, "mask", fn
    if excluder in builtin:
        return builtin[excluder], builtin[excluder], None
    return getattr(excluder, "__name__", repr(excluder)), "mask", excluder


def evaluate(
    distmat: np.ndarray,
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
) -> EvalResult:
    """CMC curve, mAP and mINP of a distance matrix under an evaluation protocol.

    For each query the gallery is ranked by ascending distance, equal distances by
    ascending gallery index (as a stable argsort would); the items the excluder masks are
    left out of the ranking. A query with no correct match (same pid) left is skipped and
    counted in ``num_skipped``. For the others:

    * CMC: ``cmc[k-1]`` is the fraction of queries whose first correct match is at rank
      ``<= k`` (``cuhk03``: averaged over ``repeats`` single-gallery-shot draws);
    * AP, by ``ap``: ``"step"``, the mean over the query's correct matches of the
      precision at each match (non-interpolated; scikit-learn >= 0.19
      ``average_precision_score`` without ties, torchreid, fast-reid), or
      ``"trapezoid"``, the official Market-1501 MATLAB ``compute_AP.m``
      (``ap += (recall - old_recall) * (old_precision + precision) / 2``,
      ``old_precision = 1`` at the start; about one point lower);
    * INP: ``num_matches / (rank of the last match)`` (fast-reid's mINP).

    The work is done by the numba kernel :func:`~reidcore.evaluation.rank_kernel.rank_queries`
    (parallel over queries, no full argsort per row); custom excluders are evaluated
    once per query into a ``(n_q, n_g)`` bool mask first.

    Args:
        distmat: ``(n_q, n_g)`` float32 or float64 distances (smaller = more similar),
            e.g. from :func:`~reidcore.evaluation.pairwise_distances`; must not hold NaN.
        q_pids, q_camids: ``(n_q,)`` integer identities and cameras of the queries.
        g_pids, g_camids: ``(n_g,)`` integer identities and cameras of the gallery.
        excluder: a name in :data:`~reidcore.evaluation.EXCLUDERS` (``"market1501"``,
            ``"diagonal"``, ``"cuhk03"``, ``"none"``), a name registered by a plugin's
            ``reid_excluders`` hook, or an excluder callable.
        max_rank: length of the returned CMC curve.
        ap: ``"step"`` (default) or ``"trapezoid"``: the AP definition of ``mAP``.
        average: ``"valid"`` (default): means over the valid queries; ``"all"``: over all
            queries, a skipped query counting 0 (the MATLAB code's denominator).
        repeats, seed: ``cuhk03`` single-gallery-shot draws (deterministic per seed).

    Returns:
        :class:`EvalResult` (``mAP_step`` and ``mAP_trapezoid`` hold both APs).

    Raises:
        ValueError: ``distmat`` is not 2-D or holds NaN; an id array's length does not
            match ``distmat`` (the message names the array); ``max_rank < 1``; unknown
            ``ap``/``average``; ``excluder="diagonal"`` with ``n_q != n_g``; an excluder
            returns a mask of the wrong shape.
        UnknownNameError: unknown excluder name.
        EvaluationError: empty query set or gallery, or no valid query at all (the
            message says why, e.g. a single-camera dataset under ``market1501``).
    """
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be a 2-D (n_q, n_g) array, got shape {distmat.shape}")
    if distmat.dtype not in (np.float32, np.float64):
        distmat = distmat.astype(np.float64)
    distmat = np.ascontiguousarray(distmat)
    problem = RankProblem.build(distmat.shape, q_pids, g_pids, q_camids, g_camids, excluder,
                                max_rank, ap=ap, average=average, repeats=repeats, seed=seed,
                                what=("distmat rows", "distmat columns"))
    return problem.result(problem.rank(lambda start, stop: distmat[start:stop],
                                       block_size=max(problem.n_q, 1)))


@attrs.frozen
class RankProblem:
    """A checked evaluation problem: ids, excluder, and the options of :func:`evaluate`;
    :meth:`rank` ranks distance rows given block by block, :meth:`result` turns the
    per-query numbers into an :class:`EvalResult`. Shared by :func:`evaluate` and the
    streaming evaluation (:mod:`reidcore.evaluation.streaming`)."""

    n_q: int
    n_g: int
    q_pids: np.ndarray
    q_camids: np.ndarray
    g_pids: np.ndarray
    g_camids: np.ndarray
    name: str
    code_name: str
    exclude: Any
    max_rank: int
    ap: str
    average: str
    repeats: int
    seed: int

    @classmethod
    def build(cls, shape, q_pids, g_pids, q_camids, g_camids, excluder, max_rank, *,
              ap="step", average="valid", repeats=10, seed=0,
              what=("distmat rows", "distmat columns")) -> RankProblem:
        """Validate as :func:`evaluate` does (same errors); ``shape = (n_q, n_g)``."""
        n_q, n_g = shape
        q_pids = _vector(q_pids, "q_pids", n_q, what[0]).astype(np.int64, copy=False)
        q_camids = _vector(q_camids, "q_camids", n_q, what[0]).astype(np.int64, copy=False)
        g_pids = _vector(g_pids, "g_pids", n_g, what[1]).astype(np.int64, copy=False)
        g_camids = _vector(g_camids, "g_camids", n_g, what[1]).astype(np.int64, copy=False)
        if max_rank < 1:
            raise ValueError(f"max_rank must be at least 1, got {max_rank}")
        if ap not in AP_DEFINITIONS:
            raise ValueError(f"ap must be one of {', '.join(AP_DEFINITIONS)}, got {ap!r}")
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        name, code_name, exclude = _resolve_excluder(excluder)
        if code_name == "diagonal" and n_q != n_g:
            raise ValueError(
                f"the diagonal excluder needs the query set to be the gallery set, but "
                f"distmat has shape {tuple(shape)}"
            )
        if n_q == 0:
            raise EvaluationError(f"No valid query: the query set is empty (distmat shape "
                                  f"{tuple(shape)}).")
        if n_g == 0:
            raise EvaluationError(f"No valid query: the gallery is empty (distmat shape "
                                  f"{tuple(shape)}).")
        return cls(n_q, n_g, q_pids, q_camids, g_pids, g_camids, name, code_name, exclude,
                   int(max_rank), ap, average, int(repeats), int(seed))

    def _mask(self, start: int, stop: int) -> np.ndarray:
        if self.exclude is None:
            return np.zeros((1, 1), dtype=np.bool_)
        mask = np.empty((stop - start, self.n_g), dtype=np.bool_)
        for i in range(start, stop):
            m = np.asarray(self.exclude(self.q_pids[i], self.q_camids[i], self.g_pids,
                                        self.g_camids, i), dtype=bool)
            if m.shape != (self.n_g,):
                raise ValueError(
                    f"excluder {self.name!r} returned a mask of shape {m.shape} for query "
                    f"{i}, expected ({self.n_g},)"
                )
            mask[i - start] = m
        return mask

    def rank(self, rows: Callable[[int, int], np.ndarray], block_size: int):
        """Rank the rows ``rows(start, stop)`` (``(stop - start, n_g)`` float32/float64
        distances of queries ``start .. stop - 1``) ``block_size`` queries at a time;
        returns the per-query ``(first, ap_step, ap_trap, inp, shot_hist)``.

        Raises:
            ValueError: a block has the wrong shape or holds NaN (the message names the
                first row).
        """
        from reidcore.evaluation.rank_kernel import CODES, rank_queries

        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, got {block_size}")
        order, q_start, q_stop, grp_starts = _groups(self.q_pids, self.g_pids)
        first = np.empty(self.n_q, np.int64)
        ap_step, ap_trap, inp = (np.empty(self.n_q) for _ in range(3))
        shot_hist = np.zeros(self.max_rank, np.int64)
        for s in range(0, self.n_q, block_size):
            e = min(s + block_size, self.n_q)
            d = np.asarray(rows(s, e))
            if d.shape != (e - s, self.n_g):
                raise ValueError(f"distance rows {s}..{e - 1} have shape {d.shape}, "
                                 f"expected {(e - s, self.n_g)}")
            if d.dtype not in (np.float32, np.float64):
                d = d.astype(np.float64)
            f, a_s, a_t, p, _n_pos, hist, bad = rank_queries(
                np.ascontiguousarray(d), self.q_pids[s:e], self.q_camids[s:e], self.g_pids,
                self.g_camids, CODES[self.code_name], self._mask(s, e), order,
                q_start[s:e], q_stop[s:e], self.max_rank, grp_starts, self.repeats,
                self.seed, s)
            if bad.any():
                rows_bad = np.flatnonzero(bad) + s
                raise ValueError(
                    f"distmat contains NaN (in {len(rows_bad)} rows, first row "
                    f"{rows_bad[0]}); were the embeddings finite?"
                )
            first[s:e], ap_step[s:e], ap_trap[s:e], inp[s:e] = f, a_s, a_t, p
            shot_hist += hist.sum(axis=0)
            del d  # release this block before the next one is computed (one block held)
        return first, ap_step, ap_trap, inp, shot_hist

    def result(self, ranked) -> EvalResult:
        """:class:`EvalResult` of :meth:`rank`'s output.

        Raises:
            EvaluationError: no valid query (the message says why).
        """
        first, ap_step, ap_trap, inp, shot_hist = ranked
        n_q, max_rank = self.n_q, self.max_rank
        valid = first >= 0
        num_valid = int(valid.sum())
        if num_valid == 0:
            n_with_match = int(np.isin(self.q_pids, self.g_pids).sum())
            raise EvaluationError(no_valid_query_message(self.name, n_q, n_with_match))
        denom = num_valid if self.average == "valid" else n_q
        if self.code_name == "cuhk03":
            cmc = np.cumsum(shot_hist) / (float(self.repeats) * denom)
        else:
            hits = np.bincount(first[valid & (first < max_rank)], minlength=max_rank)
            cmc = np.cumsum(hits[:max_rank]) / float(denom)
        m_step = float(ap_step.sum() / denom)
        m_trap = float(ap_trap.sum() / denom)
        return EvalResult(
            cmc=cmc,
            mAP=m_step if self.ap == "step" else m_trap,
            num_queries=n_q,
            num_valid_queries=num_valid,
            num_skipped=n_q - num_valid,
            excluder=self.name,
            mINP=float(inp.sum() / denom),
            ap=self.ap,
            average=self.average,
            mAP_step=m_step,
            mAP_trapezoid=m_trap,
        )


def format_table(result: EvalResult) -> str:
    """A small text table of ``result``: CMC rank-1/5/10/20, mAP and mINP in percent with one
    decimal, and the valid/skipped query counts. Ranks above ``max_rank`` are left out.
    """
    rows = [(f"rank-{k}", result.rank(k)) for k in REPORTED_RANKS if k <= len(result.cmc)]
    rows.append(("mAP", result.mAP))
    rows.append(("mINP", result.mINP))
    lines = [f"Evaluation ({result.excluder} protocol, {result.ap} AP)",
             f"  {'metric':<8} {'value':>6}"]
    lines += [f"  {label:<8} {100.0 * value:>5.1f}%" for label, value in rows]
    lines.append(
        f"  queries: {result.num_valid_queries} valid, {result.num_skipped} skipped "
        f"(of {result.num_queries})"
    )
    return "\n".join(lines)
