"""Evaluation protocols ("excluders"): which gallery items a query must ignore.

An excluder is called once per query as
``excluder(q_pid, q_camid, g_pids, g_camids, q_index)`` and returns a boolean
``(n_g,)`` mask, ``True`` for the gallery items that are left out of that query's
ranking (neither correct nor wrong matches). :data:`EXCLUDERS` maps protocol names to
excluders; register more there.

The names follow triplet-reid's ``evaluate.py --excluder`` (Hermans, Beyer & Leibe,
"In Defense of the Triplet Loss for Person Re-Identification", 2017).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from reidcore.errors import UnknownNameError

__all__ = [
    "EXCLUDERS",
    "Excluder",
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


#: protocol name -> excluder
EXCLUDERS: dict[str, Excluder] = {
    "market1501": exclude_market1501,
    "diagonal": exclude_diagonal,
    "none": exclude_none,
}


def get_excluder(name: str) -> Excluder:
    """The excluder registered under ``name`` in :data:`EXCLUDERS`.

    Raises:
        UnknownNameError: no such protocol (the message lists the known ones).
    """
    try:
        return EXCLUDERS[name]
    except KeyError:
        raise UnknownNameError("excluder", name, list(EXCLUDERS)) from None
