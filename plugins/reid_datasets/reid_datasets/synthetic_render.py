"""Drawing a synthetic person into a camera image, with keypoints and their visibility.

Part of :mod:`reid_datasets.synthetic` (see its docstring for the generative model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from reid_datasets.joints import JOINTS
from reid_datasets.synthetic_identities import RGB, Identity
from reid_datasets.synthetic_photometrics import _camera_effects
from reid_datasets.synthetic_pose import Pose, skeleton
from reid_datasets.synthetic_scene import _SS, Camera, _background, _occluder

# ------------------------------------------------------------------------- drawing


def _shade(c: RGB, f: float) -> RGB:
    return tuple(int(min(255, v * f)) for v in c)  # type: ignore[return-value]


class _Painter:
    """Draws body parts on a canvas; :meth:`px` maps body units (height 1) to canvas pixels."""

    def __init__(self, img: Image.Image, origin: tuple[float, float], height: float):
        self.img, self.draw = img, ImageDraw.Draw(img)
        self.ox, self.oy, self.s = origin[0], origin[1], height

    def px(self, p: np.ndarray) -> tuple[float, float]:
        return (self.ox + p[0] * self.s, self.oy + p[1] * self.s)

    def capsule(self, p: np.ndarray, q: np.ndarray, r: float, fill: RGB) -> None:
        (x0, y0), (x1, y1) = self.px(p), self.px(q)
        rad = r * self.s
        self.draw.line([x0, y0, x1, y1], fill=fill, width=max(1, round(2 * rad)))
        for x, y in ((x0, y0), (x1, y1)):
            self.draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=fill)

    def ellipse(self, c: np.ndarray, rx: float, ry: float, fill: RGB) -> None:
        x, y = self.px(c)
        self.draw.ellipse(
            [x - rx * self.s, y - ry * self.s, x + rx * self.s, y + ry * self.s], fill=fill
        )

    def polygon(self, pts: Sequence[np.ndarray], fill: RGB) -> None:
        self.draw.polygon([self.px(p) for p in pts], fill=fill)

    def pattern(self, pts: Sequence[np.ndarray], ident: Identity) -> None:
        """Overlay the identity's shirt pattern inside polygon ``pts``."""
        if ident.pattern == "plain":
            return
        mask = Image.new("L", self.img.size, 0)
        ImageDraw.Draw(mask).polygon([self.px(p) for p in pts], fill=255)
        h, w = self.img.size[1], self.img.size[0]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        period = ident.pattern_period * self.s
        yy, xx = (yy - self.oy) % period, (xx - self.ox) % period
        bits = _pattern_bits(ident.pattern, xx, yy, period)
        mask = Image.fromarray(((np.asarray(mask) > 0) & bits).astype(np.uint8) * 255)
        self.img.paste(ident.pattern_colour, (0, 0), mask)


def _pattern_bits(pattern: str, xx: np.ndarray, yy: np.ndarray, period: float) -> np.ndarray:
    """Where a non-plain shirt pattern has its colour: ``xx``, ``yy`` are coordinates
    already reduced modulo ``period`` (any unit, the same for all three)."""
    if pattern == "stripes":
        return yy < 0.45 * period
    if pattern == "checks":
        return (yy < period / 2) ^ (xx < period / 2)
    return (yy - period / 2) ** 2 + (xx - period / 2) ** 2 < (0.24 * period) ** 2


def _limbs(
    pt: _Painter, ident: Identity, j: dict, side: str, part: str, facing: int, dark: float = 1.0
) -> None:
    """Draw one side's leg (``part="leg"``) or arm (``part="arm"``); ``facing`` 0 unless side view."""
    b = ident.build
    if part == "leg":
        hip, knee, ankle = j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_ankle"]
        trousers, skin = _shade(ident.trousers, dark), _shade(ident.skin, dark)
        if ident.shorts:
            pt.capsule(knee, ankle, 0.026 * b, skin)
            pt.capsule(hip, hip + 0.75 * (knee - hip), 0.038 * b, trousers)
        else:
            pt.capsule(knee, ankle, 0.03 * b, trousers)
            pt.capsule(hip, knee, 0.038 * b, trousers)
        toe = ankle + np.array([0.035 * facing, 0.018])
        pt.ellipse(
            (ankle + toe) / 2 + np.array([0, 0.008]),
            0.03 + abs(facing) * 0.02,
            0.018,
            _shade(ident.shoes, dark),
        )
    else:
        sh, el, wr = j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"]
        shirt, skin = _shade(ident.shirt, dark), _shade(ident.skin, dark)
        pt.capsule(el, wr, 0.021 * b, shirt if ident.long_sleeves else skin)
        if ident.long_sleeves:
            pt.capsule(sh, el, 0.027 * b, shirt)
        else:
            pt.capsule(sh + 0.55 * (el - sh), el, 0.022 * b, skin)
            pt.capsule(sh, sh + 0.55 * (el - sh), 0.028 * b, shirt)
        pt.ellipse(wr + 0.012 * (wr - el) / (np.linalg.norm(wr - el) + 1e-9), 0.02, 0.022, skin)


def _torso(j: dict, ident: Identity, view: str, facing: int) -> list[np.ndarray]:
    """Shirt polygon (neck, shoulders, hem below the hips)."""
    b = ident.build
    y_n, y_s, y_h = j["neck"][1], j["r_shoulder"][1], j["r_hip"][1]
    if view == "side":
        d = facing
        back, chest = -0.06 * b * d, 0.068 * b * d
        pts = [
            (0.02 * d, y_n),
            (chest, y_s + 0.02),
            (chest * 0.95, y_s + 0.12),
            (chest * 0.9, y_h + 0.03),
            (back * 1.05, y_h + 0.03),
            (back, y_s + 0.06),
            (back * 0.8, y_s),
            (-0.02 * d, y_n),
        ]
    else:
        w, hw = 0.118 * b, 0.08 * b
        pts = [
            (-0.035, y_n),
            (-w, y_s - 0.008),
            (-w * 0.97, y_s + 0.05),
            (-hw * 0.95, y_h - 0.1),
            (-hw, y_h + 0.03),
            (hw, y_h + 0.03),
            (hw * 0.95, y_h - 0.1),
            (w * 0.97, y_s + 0.05),
            (w, y_s - 0.008),
            (0.035, y_n),
        ]
    return [np.array(p) for p in pts]


def _pelvis(j: dict, ident: Identity) -> list[np.ndarray]:
    r, left = j["r_hip"], j["l_hip"]
    lo, hi = min(r[0], left[0]) - 0.035 * ident.build, max(r[0], left[0]) + 0.035 * ident.build
    return [
        np.array(p)
        for p in ((lo, r[1] - 0.03), (hi, r[1] - 0.03), (hi, r[1] + 0.06), (lo, r[1] + 0.06))
    ]


def _head(pt: _Painter, ident: Identity, view: str, facing: int) -> None:
    c, rx, ry = np.array([0.0, 0.068]), 0.05, 0.065
    pt.capsule(np.array([0.0, 0.1]), np.array([0.0, 0.15]), 0.022, ident.skin)  # neck
    if view == "back":
        pt.ellipse(c, rx, ry, ident.hair)
        return
    if view == "front":
        pt.ellipse(c + np.array([0, -0.004]), rx * 1.05, ry * 1.0, ident.hair)
        pt.ellipse(c + np.array([0, 0.012]), rx * 0.86, ry * 0.82, ident.skin)
        for ex in (-0.018, 0.018):
            pt.ellipse(c + np.array([ex, 0.008]), 0.007, 0.006, (30, 25, 25))
        return
    d = facing
    pt.ellipse(c, rx * 0.95, ry, ident.skin)
    pt.ellipse(c + np.array([-0.02 * d, -0.012]), rx * 0.8, ry * 0.85, ident.hair)
    pt.ellipse(c + np.array([0.03 * d, 0.006]), 0.006, 0.006, (30, 25, 25))


def _long_hair(pt: _Painter, ident: Identity, view: str, facing: int) -> None:
    if view == "side":
        x0 = -0.03 * facing
        pts = [(x0, 0.04), (x0 - 0.035 * facing, 0.07), (x0 - 0.035 * facing, 0.2), (x0, 0.2)]
    else:
        pts = [(-0.05, 0.06), (0.05, 0.06), (0.06, 0.21), (-0.06, 0.21)]
    pt.polygon([np.array(p) for p in pts], ident.hair)


def _bag(pt: _Painter, ident: Identity, j: dict, view: str, facing: int, layer: str) -> None:
    """Draw the bag parts that belong to ``layer`` ("behind" or "front" of the body)."""
    if ident.bag == "none":
        return
    colour, strap = ident.bag_colour, _shade(ident.bag_colour, 0.7)
    y_s, y_h = j["r_shoulder"][1], j["r_hip"][1]
    if ident.bag == "backpack":
        if view == "side" and layer == "behind":
            x = -0.06 * ident.build * facing
            pts = [
                (x, y_s + 0.01),
                (x - 0.07 * facing, y_s + 0.03),
                (x - 0.07 * facing, y_h - 0.07),
                (x, y_h - 0.05),
            ]
            pt.polygon([np.array(p) for p in pts], colour)
        elif view == "back" and layer == "front":
            w = 0.082 * ident.build
            pt.polygon(
                [
                    np.array(p)
                    for p in (
                        (-w, y_s + 0.015),
                        (w, y_s + 0.015),
                        (w, y_h - 0.06),
                        (-w, y_h - 0.06),
                    )
                ],
                colour,
            )
        elif view == "front" and layer == "front":
            for s in ("r", "l"):
                top = j[f"{s}_shoulder"] * np.array([0.6, 1.0]) + np.array([0, -0.005])
                pt.capsule(top, top + np.array([0, 0.16]), 0.009, strap)
        elif view == "side" and layer == "front":
            top = j["neck"] + np.array([0, 0.04])
            pt.capsule(top, top + np.array([0.02 * facing, 0.15]), 0.009, strap)
        return
    # shoulder bag: strap from the right shoulder to a box at the left hip
    hip = j["l_hip"] + np.array([0.0, -0.01])
    out = np.sign(j["l_hip"][0] - j["r_hip"][0]) if view != "side" else 0.0
    box_c = hip + np.array([out * 0.075 * ident.build, 0.0])
    near_left = view != "side" or facing == -1
    if layer == "front":
        pt.capsule(j["r_shoulder"] * np.array([0.7, 1.0]), box_c, 0.009, strap)
    if (layer == "front") == near_left:
        pt.polygon(
            [
                box_c + np.array(p)
                for p in ((-0.045, -0.04), (0.045, -0.04), (0.05, 0.05), (-0.05, 0.05))
            ],
            colour,
        )


def render_figure(pt: _Painter, ident: Identity, pose: Pose) -> dict[str, np.ndarray]:
    """Draw a whole person with ``pt`` and return its skeleton (body units, see :func:`skeleton`)."""
    j = skeleton(ident, pose)
    view, d = pose.view, pose.facing
    torso = _torso(j, ident, view, d)
    if view == "side":
        near, far = ("r", "l") if d == 1 else ("l", "r")
        _limbs(pt, ident, j, far, "arm", d, 0.72)
        _limbs(pt, ident, j, far, "leg", d, 0.72)
        _bag(pt, ident, j, view, d, "behind")
        _limbs(pt, ident, j, near, "leg", d)
        pt.polygon(_pelvis(j, ident), ident.trousers)
        pt.polygon(torso, ident.shirt)
        pt.pattern(torso, ident)
        _head(pt, ident, view, d)
        if ident.long_hair:
            _long_hair(pt, ident, view, d)
        _limbs(pt, ident, j, near, "arm", d)
        _bag(pt, ident, j, view, d, "front")
        return j
    if ident.long_hair and view == "front":
        _long_hair(pt, ident, view, d)
    _bag(pt, ident, j, view, d, "behind")
    for side in ("r", "l"):
        _limbs(pt, ident, j, side, "leg", 0)
    pt.polygon(_pelvis(j, ident), ident.trousers)
    pt.polygon(torso, ident.shirt)
    pt.pattern(torso, ident)
    _head(pt, ident, view, d)
    if ident.long_hair and view == "back":
        _long_hair(pt, ident, view, d)
    _bag(pt, ident, j, view, d, "front")
    for side in ("r", "l"):
        _limbs(pt, ident, j, side, "arm", 0)
    return j


# ------------------------------------------------------------------------- visibility


def _inside_polygon(p: np.ndarray, poly: Sequence[np.ndarray]) -> bool:
    inside, n = False, len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        if (a[1] > p[1]) != (b[1] > p[1]):
            x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            inside ^= bool(p[0] < x)
    return inside


def _near_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> bool:
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / (np.dot(ab, ab) + 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab))) < r


def visibility(ident: Identity, pose: Pose, j: dict[str, np.ndarray]) -> np.ndarray:
    """Per-joint visibility (14,) float32 in 0/1 from self-occlusion (side views only)."""
    vis = np.ones(len(JOINTS), np.float32)
    if pose.view != "side":
        return vis
    near, far = ("r", "l") if pose.facing == 1 else ("l", "r")
    torso = _torso(j, ident, pose.view, pose.facing)
    occluders = [
        (j[f"{near}_hip"], j[f"{near}_knee"], 0.04 * ident.build),
        (j[f"{near}_knee"], j[f"{near}_ankle"], 0.032 * ident.build),
        (j[f"{near}_shoulder"], j[f"{near}_elbow"], 0.03 * ident.build),
        (j[f"{near}_elbow"], j[f"{near}_wrist"], 0.024 * ident.build),
    ]
    for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        p = j[f"{far}_{part}"]
        hidden = part in ("shoulder", "hip") or _inside_polygon(p, torso)
        hidden = hidden or any(_near_segment(p, a, b, r) for a, b, r in occluders)
        vis[JOINTS.index(f"{far}_{part}")] = 0.0 if hidden else 1.0
    return vis


# ------------------------------------------------------------------------- rendering


def render_person(
    ident: Identity,
    pose: Pose,
    camera: Camera,
    rng: np.random.Generator,
    height: int = 128,
    width: int = 64,
) -> tuple[Image.Image, np.ndarray]:
    """Render one camera image of one person.

    Args:
        ident: the person's appearance (:meth:`Identity.sample`).
        pose: the view and walking pose (:meth:`Pose.sample`).
        camera: scene and photometrics (:meth:`Camera.sample` with the same height/width).
        rng: per-image randomness (placement, background crop, clutter, jitter, noise).
        height, width: output size in pixels.

    Returns:
        ``(image, keypoints)``: an RGB ``PIL.Image`` of ``width`` x ``height`` and a
        ``(14, 3)`` float32 array of ``[x, y, visible]`` per joint of :data:`JOINTS`,
        in output pixels (``0 <= x < width``, ``0 <= y < height``).
    """
    canvas = _background(camera, rng, height * _SS, width * _SS)
    size = canvas.height * min(0.97, camera.scale * math.exp(rng.normal(0.0, 0.04)))
    origin = (
        canvas.width * (0.5 + rng.normal(0.0, 0.05)),
        (canvas.height - size) * rng.uniform(0.25, 0.75),
    )
    pt = _Painter(canvas, origin, size)
    j = render_figure(pt, ident, pose)
    kp = np.array([pt.px(j[name]) for name in JOINTS], np.float64) / _SS
    vis = visibility(ident, pose, j)
    if rng.random() < 0.15:  # an occluder in front of the feet hides the joints behind it
        x0, x1, y0 = _occluder(pt.draw, rng, canvas.height, canvas.width)
        vis[(kp[:, 1] >= y0 / _SS) & (kp[:, 0] >= x0 / _SS) & (kp[:, 0] <= x1 / _SS)] = 0.0
    img = _camera_effects(canvas.reduce(_SS), camera, rng)
    kp = np.round(kp, 2)
    vis[(kp[:, 0] < 0) | (kp[:, 0] >= width) | (kp[:, 1] < 0) | (kp[:, 1] >= height)] = 0.0
    kp[:, 0] = np.clip(kp[:, 0], 0, width - 0.01)
    kp[:, 1] = np.clip(kp[:, 1], 0, height - 0.01)
    return img, np.concatenate([kp, vis[:, None]], axis=1).astype(np.float32)
