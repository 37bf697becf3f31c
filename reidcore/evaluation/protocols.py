"""Evaluation protocols ("excluders"): which gallery items a query must ignore.

An excluder is called once per query as
``excluder(q_pid, q_camid, g_pids, g_camids, q_index)`` and returns a boolean
``(n_g,)`` mask, ``True`` for the gallery items that are left out of that query's
ranking (neither correct nor wrong matches). :data:`EXCLUDERS` maps the built-in
protocol names to excluders (the rank kernel runs these without calling them); plugins
add more through the ``reid_excluders`` hook (see :mod:`reidcore.hookspecs`), which
:func:`get_excluder` consults for names not in :data:`EXCLUDERS`.

The names follow triplet-reid's ``evaluate.py --excluder`` (Hermans, Beyer & Leibe,
"In Defense of the Triplet Loss for Person Re-Identification", 2017).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from reidcore.errors import EvaluationError, UnknownNameError

__all__ = [
    "EXCLUDERS",
    "Excluder",
    "check_queries",
    "exclude_cuhk03",
    "exclude_diagonal",
    "exclude_market1501",
    "exclude_none",
    "get_excluder",
]


class Excluder(Protocol):
    """Signature of an excluder; see the module docstring."""

    def __call__(
        self, q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray, q_index: int
    ) -> np.ndarray: ...


def exclude_market1501(
    q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray, q_index: int
) -> np.ndarray:
    """The Market-1501 protocol (Zheng et al., "Scalable Person Re-identification:
    A Benchmark", ICCV 2015; the official MATLAB evaluation code).

    Excludes gallery images of the query's identity taken by the query's camera
    (so that only cross-camera matches count) and the junk images (pid ``-1``),
    whatever the query. Distractors (pid ``0``) are kept: they are wrong matches.

    Args:
        q_pid, q_camid: the query's identity and camera.
        g_pids, g_camids: ``(n_g,)`` integer arrays of the gallery.
        q_index: unused (the query's row in the distance matrix).

    Returns:
        ``(n_g,)`` bool mask, ``True`` = ignore.
    """
    return ((g_pids == q_pid) & (g_camids == q_camid)) | (g_pids == -1)


def exclude_diagonal(
    q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray, q_index: int
) -> np.ndarray:
    """For a query set that is the gallery set (e.g. Stanford Online Products):
    ignore the gallery item with the query's own index, nothing else.

    Args:
        q_index: the query's row in the distance matrix, which is also its gallery column.

    Returns:
        ``(n_g,)`` bool mask with ``True`` at ``q_index`` only.

    Raises:
        ValueError: ``q_index`` is not a valid gallery index (query and gallery differ).
    """
    n_g = len(g_pids)
    if not 0 <= q_index < n_g:
        raise ValueError(
            f"the diagonal excluder needs the query set to be the gallery set, but query "
            f"index {q_index} is outside the gallery of {n_g} items"
        )
    mask = np.zeros(n_g, dtype=bool)
    mask[q_index] = True
    return mask


def exclude_none(
    q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray, q_index: int
) -> np.ndarray:
    """Ignore nothing: every gallery item of the query's identity is a correct match.

    Returns:
        ``(n_g,)`` all-``False`` mask.
    """
    return np.zeros(len(g_pids), dtype=bool)


def exclude_cuhk03(
    q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray, q_index: int
) -> np.ndarray:
    """CUHK03's mask (Li et al., "DeepReID", CVPR 2014; torchreid's ``eval_cuhk03``):
    gallery images of the query's identity from the query's camera, and junk (pid
    ``-1``, which CUHK03 itself does not have).

    Under the name ``"cuhk03"``, :func:`~reidcore.evaluation.evaluate` also switches the
    CMC to single-gallery-shot: ``repeats`` seeded draws of one gallery image per
    identity, CMC averaged over the draws (AP and INP use the whole kept gallery).

    Returns:
        ``(n_g,)`` bool mask, ``True`` = ignore.
    """
    return ((g_pids == q_pid) & (g_camids == q_camid)) | (g_pids == -1)


#: the built-in protocols, which the rank kernel evaluates without calling them
BUILTIN_EXCLUDERS: dict[str, Excluder] = {
    "market1501": exclude_market1501,
    "diagonal": exclude_diagonal,
    "cuhk03": exclude_cuhk03,
    "none": exclude_none,
}

#: protocol name -> excluder (the built-ins; more may be added here or by plugins)
EXCLUDERS: dict[str, Excluder] = dict(BUILTIN_EXCLUDERS)


def get_excluder(name: str) -> Excluder:
    """The excluder called ``name``: from :data:`EXCLUDERS`, else from the plugins'
    ``reid_excluders`` hook.

    Raises:
        UnknownNameError: no such protocol (the message lists the known ones).
    """
    if name in EXCLUDERS:
        return EXCLUDERS[name]
    from reidcore.registry import registry

    reg = registry("excluder")
    if name in reg:
        return reg.get(name)
    raise UnknownNameError("excluder", name, sorted(set(EXCLUDERS) | set(reg.names())))


def _valid_queries(q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray,
                   g_camids: np.ndarray, name: str) -> np.ndarray:
    """``(n_q,)`` bool: the query has at least one gallery match left after exclusion."""
    n_q, n_g = len(q_pids), len(g_pids)
    if name in ("market1501", "cuhk03"):  # a match of another camera, not junk
        cams: dict[int, set[int]] = {}
        for pid, cam in zip(g_pids.tolist(), g_camids.tolist(), strict=True):
            cams.setdefault(pid, set()).add(cam)
        return np.array([pid != -1 and bool(cams.get(pid, set()) - {cam})
                         for pid, cam in zip(q_pids.tolist(), q_camids.tolist(), strict=True)],
                        dtype=bool)
    if name == "none":
        return np.isin(q_pids, g_pids)
    if name == "diagonal":
        if n_q != n_g:
            raise ValueError(f"the diagonal excluder needs the query set to be the gallery set, "
                             f"but there are {n_q} queries and {n_g} gallery items")
        uniq, counts = np.unique(g_pids, return_counts=True)
        n_same = np.zeros(n_q, dtype=np.int64)
        known = np.isin(q_pids, uniq)
        n_same[known] = counts[np.searchsorted(uniq, q_pids[known])]
        return n_same - (q_pids == g_pids) > 0
    exclude = get_excluder(name)
    valid = np.zeros(n_q, dtype=bool)
    for i in range(n_q):
        same = g_pids == q_pids[i]
        if same.any():
            mask = np.asarray(exclude(q_pids[i], q_camids[i], g_pids, g_camids, i), dtype=bool)
            valid[i] = bool((same & ~mask).any())
    return valid


def check_queries(q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray,
                  g_camids: np.ndarray, excluder: str = "market1501", *,
                  where: str = "the dataset") -> int:
    """Check, from ids alone and before anything is trained, that ``excluder`` leaves some
    query a gallery match: the condition :func:`reidcore.evaluation.evaluate` needs.

    Args:
        q_pids, q_camids: ``(n_q,)`` integer arrays of the query set.
        g_pids, g_camids: ``(n_g,)`` integer arrays of the gallery.
        excluder: a protocol name (:data:`EXCLUDERS` or a plugin's).
        where: what the ids come from, for messages (e.g. ``"dataset 'market1501'"``).

    Returns:
        The number of valid queries (at least 1).

    Raises:
        EvaluationError: the query set or gallery is empty, or no query keeps a match
            (e.g. a single-camera dataset under ``market1501``); the message says why, as
            the evaluator's does.
        ValueError: ``diagonal`` with query and gallery sets of different sizes.
        UnknownNameError: unknown ``excluder``.
    """

    q_pids, q_camids = np.asarray(q_pids, dtype=np.int64), np.asarray(q_camids, dtype=np.int64)
    g_pids, g_camids = np.asarray(g_pids, dtype=np.int64), np.asarray(g_camids, dtype=np.int64)
    if excluder not in EXCLUDERS:
        get_excluder(excluder)  # UnknownNameError listing the known ones
    if len(q_pids) == 0:
        raise EvaluationError(f"No valid query: the query set of {where} is empty.")
    if len(g_pids) == 0:
        raise EvaluationError(f"No valid query: the gallery of {where} is empty.")
    valid = _valid_queries(q_pids, q_camids, g_pids, g_camids, excluder)
    n_valid = int(valid.sum())
    if n_valid == 0:
        n_with_match = int(np.isin(q_pids, g_pids).sum())
        raise EvaluationError(f"{where}: " + no_valid_query_message(excluder, len(q_pids),
                                                                     n_with_match))
    return n_valid


def no_valid_query_message(name: str, n_q: int, n_with_gallery_match: int) -> str:
    """Why no query is valid under excluder ``name`` (the evaluator's and the up-front check's message)."""
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
