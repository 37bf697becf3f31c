"""Views, walking poses and the skeleton of a synthetic person (body units, height 1).

Part of :mod:`reid_datasets.synthetic` (see its docstring for the generative model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reid_datasets.synthetic_identities import Identity, _pick

VIEWS = ("front", "back", "side")



@dataclass(frozen=True)
class Pose:
    """One image's body pose.

    ``facing`` is +1 (walking towards the image's right) or -1, used in side view.
    Angles in radians.
    """

    view: str
    facing: int
    phase: float  # walking phase
    stride: float  # thigh swing amplitude
    arm_swing: float
    arm_spread: float  # arms away from the body (front/back views)
    elbow_bend: float

    @classmethod
    def sample(cls, rng: np.random.Generator, view_p: Sequence[float] = (1 / 3,) * 3) -> Pose:
        return cls(
            view=_pick(rng, VIEWS, p=view_p),
            facing=1 if rng.random() < 0.5 else -1,
            phase=float(rng.uniform(0, 2 * math.pi)),
            stride=float(rng.uniform(0.15, 0.45)),
            arm_swing=float(rng.uniform(0.1, 0.45)),
            arm_spread=float(rng.uniform(0.06, 0.3)),
            elbow_bend=float(rng.uniform(0.05, 0.6)),
        )


def _set_side(j: dict, side: str, *points: np.ndarray) -> None:
    names = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    j.update({f"{side}_{n}": p for n, p in zip(names, points, strict=True)})


def skeleton(ident: Identity, pose: Pose) -> dict[str, np.ndarray]:
    """Joint positions of a person of height 1 with its head top at ``(0, 0)``.

    Returns:
        ``{joint name: array (2,) float64 [x, y]}`` for :data:`JOINTS`; ``x`` grows
        to the image's right, ``y`` downwards; the ankles are near ``y = 0.96``.
    """
    b, ph = ident.build, pose.phase
    y_sh, y_hip, thigh, shin, upper, fore = 0.18, 0.5, 0.235, 0.235, 0.165, 0.15
    j = {"head": np.array([0.0, 0.068]), "neck": np.array([0.0, 0.138])}
    if pose.view == "side":
        d = pose.facing
        near, far = ("r", "l") if d == 1 else ("l", "r")
        for side, sign in ((near, 1.0), (far, -1.0)):
            shoulder = np.array([-0.004 * d * sign, y_sh])
            a = -sign * pose.arm_swing * math.sin(ph)
            elbow = shoulder + upper * np.array([d * math.sin(a), math.cos(a)])
            a2 = a + pose.elbow_bend
            wrist = elbow + fore * np.array([d * math.sin(a2), math.cos(a2)])
            hip = np.array([0.004 * d * sign, y_hip])
            t = sign * pose.stride * math.sin(ph)
            knee = hip + thigh * np.array([d * math.sin(t), math.cos(t)])
            bend = 0.05 + 0.6 * max(0.0, -sign * math.cos(ph))
            ankle = knee + shin * np.array([d * math.sin(t - bend), math.cos(t - bend)])
            _set_side(j, side, shoulder, elbow, wrist, hip, knee, ankle)
        return j
    # front/back: the person's right is on the image's left in a front view
    for side, sign in (("r", 1.0), ("l", -1.0)):
        out = -sign if pose.view == "front" else sign  # image-x direction of this side
        swing = 1.0 - 0.12 * abs(math.sin(ph))
        shoulder = np.array([out * 0.112 * b, y_sh])
        a = pose.arm_spread
        elbow = shoulder + upper * swing * np.array([out * math.sin(a), math.cos(a)])
        a2 = a * 0.6 + 0.08
        wrist = elbow + fore * (1 - 0.3 * pose.elbow_bend) * np.array([out * math.sin(a2), 1.0])
        hip = np.array([out * 0.062 * b, y_hip])
        lift = 1.0 - 0.16 * pose.stride * max(0.0, sign * math.sin(ph))
        knee = hip + np.array([out * 0.006, thigh * lift])
        ankle = knee + np.array([out * 0.01, shin * lift])
        _set_side(j, side, shoulder, elbow, wrist, hip, knee, ankle)
    return j
