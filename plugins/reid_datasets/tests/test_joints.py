"""The joint order, defined once in reid_datasets.joints."""

from __future__ import annotations

import numpy as np
from reid_datasets.joints import FLIP_PAIRS, FLIP_PERMUTATION, JOINTS, NUM_JOINTS


def test_market1501_body_point_order():
    assert NUM_JOINTS == len(JOINTS) == 14
    assert JOINTS[:2] == ("head", "neck")
    assert JOINTS[2:5] == ("r_shoulder", "r_elbow", "r_wrist")
    assert JOINTS[5:8] == ("l_shoulder", "l_elbow", "l_wrist")
    assert JOINTS[8:11] == ("r_hip", "r_knee", "r_ankle")
    assert JOINTS[11:] == ("l_hip", "l_knee", "l_ankle")


def test_flip_pairs_swap_right_and_left_of_the_same_joint():
    for right, left in FLIP_PAIRS:
        assert JOINTS[right] == "r_" + JOINTS[left][2:]
    unpaired = set(range(NUM_JOINTS)) - {j for pair in FLIP_PAIRS for j in pair}
    assert [JOINTS[j] for j in sorted(unpaired)] == ["head", "neck"]


def test_flip_permutation_is_an_involution_renaming_mirrored_joints():
    perm = np.array(FLIP_PERMUTATION)
    assert (perm[perm] == np.arange(NUM_JOINTS)).all()
    names = [JOINTS[j] for j in FLIP_PERMUTATION]
    assert names[2] == "l_shoulder" and names[13] == "r_ankle" and names[0] == "head"


def test_the_synthetic_dataset_and_keypoint_csv_use_it():
    from reid_datasets import keypoints_csv, synthetic

    assert synthetic.JOINTS is JOINTS and keypoints_csv.NUM_JOINTS == NUM_JOINTS
