"""Body joints in the Market-1501 body-point order, defined once for every plugin.

The 14 joints (index: name) are the order of the Market-1501 body-point annotation
used by the PSE paper's pose maps (Sarfraz et al., CVPR 2018) and by SAN's keypoint
warp (Jin et al., AAAI 2020)::

     0 head            1 neck
     2 r_shoulder      3 r_elbow     4 r_wrist      (the person's right arm)
     5 l_shoulder      6 l_elbow     7 l_wrist      (left arm)
     8 r_hip           9 r_knee     10 r_ankle      (right leg)
    11 l_hip          12 l_knee     13 l_ankle      (left leg)

"Right" is the person's right: in a front view it is on the image's left. Keypoint
arrays everywhere (``extras["keypoints"]``, keypoint CSVs, estimators) are
``(NUM_JOINTS, 3)`` float32 ``[x, y, visible-or-confidence]`` rows in this order.
"""

from __future__ import annotations

# fmt: off
#: Joint names in the Market-1501 body-point order (J = 14).
JOINTS: tuple[str, ...] = (
    "head", "neck",
    "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
)
# fmt: on

#: Number of joints, ``len(JOINTS)``.
NUM_JOINTS: int = len(JOINTS)

#: Index pairs (right, left) of the joints that swap under a horizontal flip.
FLIP_PAIRS: tuple[tuple[int, int], ...] = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13))


def _flip_permutation() -> tuple[int, ...]:
    perm = list(range(NUM_JOINTS))
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return tuple(perm)


#: ``FLIP_PERMUTATION[j]``: the joint that becomes joint ``j`` after a horizontal flip
#: (``flipped = keypoints[FLIP_PERMUTATION]``); an involution.
FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation()
