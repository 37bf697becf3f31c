"""The numba rank kernel behind :func:`reidcore.evaluation.evaluate`.

For each query (rows in parallel with ``numba.prange``) the kernel

1. gathers the query's *positives* (gallery items of its identity that the protocol
   keeps) from a pid-grouped index of the gallery and sorts them by
   ``(distance, gallery index)`` (a few items: no full argsort of the row);
2. counts ``cum[k]``, the kept *negatives* ranked before the ``k``-th sorted positive:
   with at most :data:`LINEAR_MAX` positives by one vectorisable pass over the row per
   positive (negatives' distances copied once, the rest set to NaN), else by one pass
   placing every negative among the sorted positives by binary search;
3. the 0-based rank of the ``k``-th positive in the filtered ranking is then
   ``r_k = k + cum[k]``, from which CMC, both APs and INP follow.

Ties: items at equal distance are ranked by ascending gallery index (as a stable
argsort of the row does). Every code path (kernel, tests' reference, the single-shot
sampling) uses this rule.

Excluder codes (:data:`CODES`): ``none``, ``market1501`` (same pid and same camera,
and pid ``-1`` junk), ``diagonal`` (gallery index == query index), ``cuhk03``
(same pid and same camera, and pid ``-1``; CMC by single-gallery-shot sampling) and
``mask`` (an explicit ``(n_q, n_g)`` bool mask, for custom excluders).

Metrics of one query with ``P`` positives at 0-based ranks ``r_0 < ... < r_{P-1}``:

* CMC: the first hit ``r_0``;
* ``step`` AP: ``mean_k (k + 1) / (r_k + 1)`` (non-interpolated; scikit-learn >= 0.19
  without ties, torchreid, fast-reid);
* ``trapezoid`` AP: the official Market-1501 MATLAB ``compute_AP.m``:
  ``ap += (recall - old_recall) * (old_precision + precision) / 2`` with
  ``old_precision = 1`` at the start; only hits change the recall, so
  ``ap = mean_k (p_prev_k + (k + 1) / (r_k + 1)) / 2`` with ``p_prev_k = k / r_k``
  (``1`` when ``r_k = 0``);
* INP (Ye et al., "Deep Learning for Person Re-identification: A Survey and
  Outlook", TPAMI 2021; fast-reid's ``evaluate_rank``): ``P / (r_{P-1} + 1)``.

cuhk03 single-gallery-shot (torchreid's ``eval_cuhk03``): in each of ``repeats``
repeats, one kept gallery item of every identity is drawn; the CMC of that repeat is
the rank of the drawn positive among the drawn items. The drawn item of identity
``pid`` in repeat ``t`` for query ``i`` is the ``u``-th kept item of that identity (in
gallery-index order) with ``u = splitmix64(seed, i, t, pid) % n_kept`` (see
:func:`shot_hash`), so the draw is deterministic, independent of threading, and can be
recomputed by a reference. AP and INP use the full kept gallery.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["CODES", "MASK64", "rank_queries", "shot_hash"]

#: excluder name -> kernel code
CODES = {"none": 0, "market1501": 1, "diagonal": 2, "cuhk03": 3, "mask": 4}

MASK64 = (1 << 64) - 1

#: up to this many positives a query counts the negatives before each positive with one
#: vectorisable pass per positive; above it, each negative is placed by binary search
LINEAR_MAX = 40


@numba.njit(cache=True, inline="always")
def _splitmix(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15))
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def shot_hash(seed, query, repeat, pid):
    """``splitmix64`` chained over ``(seed, query, repeat, pid)`` as uint64.

    Python equivalent (all arithmetic modulo ``2**64``)::

        def mix(x):
            x = (x + 0x9E3779B97F4A7C15) % 2**64
            z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
            return z ^ (z >> 31)
        h = mix(seed % 2**64)
        for v in (query, repeat, pid): h = mix(h ^ (v % 2**64))
    """
    h = _splitmix(np.uint64(seed))
    h = _splitmix(h ^ np.uint64(query))
    h = _splitmix(h ^ np.uint64(repeat))
    h = _splitmix(h ^ np.uint64(pid))
    return h


@numba.njit(cache=True, inline="always")
def _excluded(code, i, j, qp, qc, gp, gc, mask, row0):
    """Whether gallery item ``j`` (pid ``gp``, camera ``gc``) is ignored by the query of
    block row ``i`` (global index ``row0 + i``)."""
    if code == 0:
        return False
    if code == 1 or code == 3:
        return gp == -1 or (gp == qp and gc == qc)
    if code == 2:
        return j == row0 + i
    return mask[i, j]


@numba.njit(parallel=True, cache=True)
def rank_queries(distmat, q_pids, q_camids, g_pids, g_camids, code, mask,
                 grp_order, q_grp_start, q_grp_stop, max_rank,
                 grp_starts, repeats, seed, row0=0):
    """Per-query metrics; see the module docstring.

    Args:
        distmat: ``(n_q, n_g)`` float32 or float64: the rows of queries ``row0 ..
            row0 + n_q - 1`` (a block of a larger query set; the id arrays and ``mask``
            hold the block's rows).
        q_pids, q_camids: ``(n_q,)`` int64; g_pids, g_camids: ``(n_g,)`` int64.
        code: excluder code (:data:`CODES`).
        mask: ``(n_q, n_g)`` bool for code ``mask``, else any 2-D bool (unused).
        grp_order: ``(n_g,)`` int64 gallery indices sorted by (pid, index).
        q_grp_start, q_grp_stop: ``(n_q,)`` int64 slice of ``grp_order`` holding the
            query's identity (empty when the gallery lacks it).
        max_rank: CMC length.
        grp_starts: ``(n_ids + 1,)`` int64 boundaries of every identity's slice in
            ``grp_order`` (used by code ``cuhk03`` only).
        repeats, seed: cuhk03 single-shot repeats and seed.
        row0: global index of the block's first query (for ``diagonal`` and the
            cuhk03 draws, so that a block gives the rows of the whole matrix).

    Returns:
        ``first (n_q,)`` int64 0-based rank of the first hit (-1: no positive),
        ``ap_step``, ``ap_trap``, ``inp`` ``(n_q,)`` float64, ``n_pos (n_q,)`` int64,
        ``shot_hist (n_q, max_rank)`` int64 (cuhk03: repeats whose drawn positive is
        at each rank), ``bad (n_q,)`` bool (a NaN distance in the row).
    """
    n_q, n_g = distmat.shape
    first = np.full(n_q, -1, np.int64)
    ap_step = np.zeros(n_q)
    ap_trap = np.zeros(n_q)
    inp = np.zeros(n_q)
    n_pos = np.zeros(n_q, np.int64)
    shot_hist = np.zeros((n_q, max_rank), np.int64)
    bad = np.zeros(n_q, np.bool_)
    n_ids = grp_starts.shape[0] - 1
    for i in numba.prange(n_q):
        row = distmat[i]
        qp = q_pids[i]
        qc = q_camids[i]
        s0 = q_grp_start[i]
        s1 = q_grp_stop[i]
        # 1. positives, in gallery-index order
        pj = np.empty(s1 - s0, np.int64)
        npos = 0
        for s in range(s0, s1):
            j = grp_order[s]
            if not _excluded(code, i, j, qp, qc, g_pids[j], g_camids[j], mask, row0):
                pj[npos] = j
                npos += 1
        has_nan = False
        for k in range(npos):
            if row[pj[k]] != row[pj[k]]:
                has_nan = True
        if npos == 0 or has_nan:
            # still scan the row for NaN so that the caller can report it
            for j in range(n_g):
                if row[j] != row[j]:
                    has_nan = True
                    break
            bad[i] = has_nan
            continue
        pj = pj[:npos]
        pd = np.empty(npos, np.float64)
        for k in range(npos):
            pd[k] = row[pj[k]]
        order = np.argsort(pd, kind="mergesort")  # stable: ties by gallery index
        spd = pd[order]
        spj = pj[order]
        dmax = spd[npos - 1]
        # 2. negatives ranked before each positive: cum[k] for the k-th sorted positive
        cum = np.zeros(npos, np.int64)
        if npos <= LINEAR_MAX:
            # few positives: one vectorisable pass per positive over the negatives' distances
            # (non-negatives set to NaN, which compares False)
            nd = np.empty_like(row)
            nan = row.dtype.type(np.nan)
            for j in range(n_g):
                v = row[j]
                has_nan |= v != v
                neg = g_pids[j] != qp
                if code == 1 or code == 3:
                    neg = neg and g_pids[j] != -1
                elif code == 2:
                    neg = neg and j != row0 + i
                elif code == 4:
                    neg = neg and not mask[i, j]
                nd[j] = v if neg else nan
            if has_nan:
                bad[i] = True
                continue
            for k in range(npos):
                dk = row[spj[k]]
                lt = 0
                eq = 0
                for j in range(n_g):
                    lt += nd[j] < dk
                    eq += nd[j] == dk
                if eq > 0:  # ties: negatives with a lower gallery index come first
                    for j in range(spj[k]):
                        lt += nd[j] == dk
                cum[k] = lt
        else:
            # many positives: place every negative among them by binary search
            before = np.zeros(npos + 1, np.int64)
            for j in range(n_g):
                gp = g_pids[j]
                if gp == qp:
                    continue
                d = row[j]
                if d != d:
                    has_nan = True
                    continue
                if d > dmax:
                    continue
                if _excluded(code, i, j, qp, qc, gp, g_camids[j], mask, row0):
                    continue
                lo = 0
                hi = npos
                while lo < hi:  # number of positives with key < (d, j)
                    mid = (lo + hi) >> 1
                    if spd[mid] < d or (spd[mid] == d and spj[mid] < j):
                        lo = mid + 1
                    else:
                        hi = mid
                before[lo] += 1
            if has_nan:
                bad[i] = True
                continue
            acc = 0
            for k in range(npos):
                acc += before[k]
                cum[k] = acc
        # 3. metrics from the ranks of the positives
        s_step = 0.0
        s_trap = 0.0
        r = 0
        for k in range(npos):
            r = k + cum[k]
            p = (k + 1.0) / (r + 1.0)
            s_step += p
            if r == 0:
                s_trap += (1.0 + p) * 0.5
            else:
                s_trap += (k / r + p) * 0.5
            if k == 0:
                first[i] = r
        ap_step[i] = s_step / npos
        ap_trap[i] = s_trap / npos
        inp[i] = npos / (r + 1.0)
        n_pos[i] = npos
        if code == 3:
            # single-gallery-shot CMC: one drawn item per identity and repeat
            for t in range(repeats):
                # the drawn positive
                u = shot_hash(seed, row0 + i, t, qp) % np.uint64(npos)
                jp = pj[np.int64(u)]  # pj is in gallery-index order
                dp = row[jp]
                rank = 0
                for g in range(n_ids):
                    a = grp_starts[g]
                    b = grp_starts[g + 1]
                    gp = g_pids[grp_order[a]]
                    if gp == qp or gp == -1:
                        continue
                    v = shot_hash(seed, row0 + i, t, gp) % np.uint64(b - a)
                    jn = grp_order[a + np.int64(v)]
                    dn = row[jn]
                    if dn < dp or (dn == dp and jn < jp):
                        rank += 1
                if rank < max_rank:
                    shot_hist[i, rank] += 1
    return first, ap_step, ap_trap, inp, n_pos, shot_hist, bad
