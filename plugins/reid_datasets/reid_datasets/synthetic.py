"""An embedded synthetic re-ID dataset: drawn people, no download (numpy + Pillow only).

Generative model
----------------
Everything is drawn from ``numpy.random.default_rng`` streams keyed by the seed,
so one seed always gives the same PNG bytes and keypoints (for one Pillow/zlib).

* **Identity** (:class:`Identity`, one per person id): shirt colour, shirt pattern
  (plain / horizontal stripes / checks / dots, with a pattern colour and scale),
  sleeve length, trousers colour and length (trousers / shorts), shoe colour,
  skin tone, hair colour and length, a bag (none / backpack / shoulder bag, with
  its colour) and a body build (slim / average / broad). All attributes come from
  small palettes, so many identities share a shirt colour; about a third of the
  identities are *siblings* of an earlier one that differ in a single attribute
  (e.g. same clothes, other pattern or trousers): colour alone does not
  separate them. No two identities have the same attributes.
* **Camera** (:class:`Camera`, one per camera index): a background scene (wall and
  floor colours, horizon, wall texture: panels / bricks / foliage / posters,
  low-frequency blotches), the person's scale in the box, view probabilities,
  and strong photometrics: gain, per-channel colour cast, additive tint, gamma,
  haze, a linear illumination gradient, blur, low resolution and noise.
* **Image** (:class:`Pose` + placement, one per image): the view (front / back /
  side facing left or right), a walking phase and stride (leg and arm swing,
  knee and elbow bend), position and scale jitter, a random crop of the camera's
  scene, sometimes a passer-by at the border (in a clothing colour) or an
  occluder in front of the feet, and small brightness/colour jitter.

The person is drawn at twice the output resolution with ``PIL.ImageDraw``
(capsules for limbs, polygons for torso and pelvis, ellipses for head, hair,
shoes) and box-downsampled. In a front view the person's right side is on the
image's left; a side view has narrow shoulders and the far limbs drawn darker
and behind the body; a back view shows no face.

Ground truth per image: 14 keypoints in Market-1501 joint order (:data:`JOINTS`)
in pixels of the saved image (``x`` in ``[0, W)``, ``y`` in ``[0, H)``) with a
visibility flag (0 for joints hidden by the body in a side view, by an occluder,
or outside the image), and the view.

Layout of a generated folder (Market-1501 names, readable by the market1501 reader)::

    synthetic-<hash>/bounding_box_train/0001_c1s1_000001_00.png ...
    synthetic-<hash>/query/0101_c1s1_000001_00.png ...   (first image of each test id+camera)
    synthetic-<hash>/bounding_box_test/0101_c1s1_000002_00.png ...
    synthetic-<hash>/annotations.csv   image,pid,camid,view,x0..x13,y0..y13,v0..v13
    synthetic-<hash>/params.json
    synthetic-<hash>/texture_synthetic_<T>/0001_c1s1_000001_00.png ...   (only with textures=T)

With ``textures=T`` the reader also writes each image's *true texture* (the identity's
body surface in the layout of :mod:`reid_datasets.body_texture`, for SAN;
:func:`identity_texture`) and sets ``extras["texture"]``; the images, keypoints and
the folder's hash are the same with or without it.

Train ids are ``1..num_train_ids``, test ids follow; every id is seen by every
camera ``images_per_camera`` times.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from reid_datasets import body_texture
from reid_datasets._common import publish_folder
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

#: Bump when the generator's output changes: it is part of the cache folder's hash.
GENERATOR_VERSION = 1

# fmt: off
#: Keypoint order (Market-1501 body-point annotation).
JOINTS = (
    "head", "neck",
    "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
)
VIEWS = ("front", "back", "side")
CACHE_ENV = "REIDCORE_CACHE"
PARTS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))
_SS = 2  # supersampling factor of the drawing canvas

RGB = tuple[int, int, int]

# Palettes (RGB). Identities draw from them, so many share a colour.
SHIRTS: tuple[RGB, ...] = (
    (200, 40, 40), (40, 80, 190), (235, 235, 228), (30, 30, 35), (40, 140, 60),
    (230, 200, 50), (130, 130, 130), (230, 140, 170), (130, 180, 230),
)
PATTERN_COLOURS: tuple[RGB, ...] = (
    (240, 240, 235), (25, 25, 30), (200, 40, 40), (40, 70, 180), (235, 205, 50), (40, 140, 60),
)
TROUSERS: tuple[RGB, ...] = (
    (30, 30, 35), (50, 70, 120), (110, 110, 115), (190, 170, 130), (100, 70, 45),
    (220, 220, 215), (50, 75, 50),
)
SHOES: tuple[RGB, ...] = ((20, 20, 20), (230, 230, 230), (110, 70, 40), (120, 120, 125))
SKINS: tuple[RGB, ...] = (
    (240, 200, 170), (220, 170, 130), (185, 135, 95), (125, 85, 60), (90, 60, 40),
)
HAIRS: tuple[RGB, ...] = (
    (25, 20, 20), (75, 48, 30), (205, 170, 100), (165, 165, 165), (145, 62, 30),
)
BAGS: tuple[RGB, ...] = (
    (25, 25, 25), (110, 70, 40), (180, 40, 40), (40, 70, 170), (120, 120, 120), (50, 110, 60),
)
# fmt: on
PATTERNS = ("plain", "stripes", "checks", "dots")
BUILDS = (0.86, 1.0, 1.17)
_CLUTTER: tuple[RGB, ...] = SHIRTS + TROUSERS + BAGS


def _pick(rng: np.random.Generator, options: Sequence, p: Sequence[float] | None = None):
    return options[int(rng.choice(len(options), p=p))]


# ------------------------------------------------------------------------- identities


@dataclass(frozen=True)
class Identity:
    """What a person looks like in every image (colours are RGB tuples)."""

    shirt: RGB
    pattern: str  # one of PATTERNS
    pattern_colour: RGB
    pattern_period: float  # pattern period, fraction of the person's height
    long_sleeves: bool
    trousers: RGB
    shorts: bool
    shoes: RGB
    skin: RGB
    hair: RGB
    long_hair: bool
    bag: str  # "none" | "backpack" | "shoulder"
    bag_colour: RGB
    build: float  # shoulder/hip width factor, one of BUILDS

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Identity:
        """Draw independent attributes."""
        shirt = _pick(rng, SHIRTS)
        pattern = _pick(rng, PATTERNS, p=(0.4, 0.2, 0.2, 0.2))
        return cls(
            shirt=shirt,
            pattern=pattern,
            pattern_colour=_pick(rng, [c for c in PATTERN_COLOURS if _far(c, shirt)]),
            pattern_period=_pick(rng, (0.055, 0.08)),
            long_sleeves=bool(rng.random() < 0.5),
            trousers=_pick(rng, TROUSERS),
            shorts=bool(rng.random() < 0.25),
            shoes=_pick(rng, SHOES),
            skin=_pick(rng, SKINS),
            hair=_pick(rng, HAIRS),
            long_hair=bool(rng.random() < 0.3),
            bag=_pick(rng, ("none", "backpack", "shoulder"), p=(0.5, 0.25, 0.25)),
            bag_colour=_pick(rng, BAGS),
            build=_pick(rng, BUILDS),
        )

    def mutate(self, rng: np.random.Generator) -> Identity:
        """A sibling: a copy that differs in one visible attribute."""
        other = Identity.sample(rng)
        attr = _pick(rng, ("pattern", "trousers", "shorts", "long_sleeves", "hair", "bag", "build"))
        if attr == "pattern":
            if self.pattern == "plain":
                return replace(self, pattern=_pick(rng, PATTERNS[1:]))
            return replace(self, pattern=_pick(rng, [p for p in PATTERNS if p != self.pattern]))
        if attr == "shorts":
            return replace(self, shorts=not self.shorts)
        if attr == "long_sleeves":
            return replace(self, long_sleeves=not self.long_sleeves)
        if attr == "bag":
            bags = [b for b in ("none", "backpack", "shoulder") if b != self.bag]
            return replace(self, bag=_pick(rng, bags), bag_colour=other.bag_colour)
        return replace(self, **{attr: getattr(other, attr)})

    def key(self) -> tuple:
        """The attributes that can be told apart in an image (equal keys = look-alikes)."""
        pattern = (
            ("plain",)
            if self.pattern == "plain"
            else (self.pattern, self.pattern_colour, self.pattern_period)
        )
        bag = ("none",) if self.bag == "none" else (self.bag, self.bag_colour)
        return (
            self.shirt,
            *pattern,
            self.long_sleeves,
            self.trousers,
            self.shorts,
            self.shoes,
            self.skin,
            self.hair,
            self.long_hair,
            *bag,
            self.build,
        )


def _far(a: RGB, b: RGB) -> bool:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 150


def sample_identities(
    rng: np.random.Generator, n: int, sibling_rate: float = 0.25
) -> list[Identity]:
    """``n`` distinct identities; a ``sibling_rate`` fraction mutate an earlier one."""
    out: list[Identity] = []
    keys: set[tuple] = set()
    while len(out) < n:
        if out and rng.random() < sibling_rate:
            ident = out[int(rng.integers(len(out)))].mutate(rng)
        else:
            ident = Identity.sample(rng)
        if ident.key() not in keys:
            keys.add(ident.key())
            out.append(ident)
    return out


# ------------------------------------------------------------------------- cameras


@dataclass(frozen=True, eq=False)
class Camera:
    """One camera: its scene and photometrics.

    ``scene`` is a ``(H*2, W*2*3, 3)`` uint8 background image (at the drawing
    resolution) that images crop; ``cast`` multiplies RGB, ``tint`` is added
    (0..255 scale) after gain and gamma.
    """

    scene: np.ndarray
    scale: float  # person height / image height
    view_p: tuple[float, float, float]  # P(front), P(back), P(side)
    gain: float
    cast: tuple[float, float, float]
    tint: tuple[float, float, float]
    gamma: float
    haze: float  # mix towards grey, 0..1
    gradient: tuple[float, float]  # illumination slope along x and y
    blur: float  # Gaussian radius, output pixels
    lowres: float  # downscale factor before upscaling back (1 = none)
    noise: float  # Gaussian noise sigma, 0..255 scale

    @classmethod
    def sample(cls, rng: np.random.Generator, height: int, width: int) -> Camera:
        """Draw a camera for images of ``height`` x ``width`` pixels."""
        cast = np.exp(rng.normal(0.0, 0.13, 3))
        cast /= cast.mean() ** 0.5
        view_p = rng.dirichlet((2.0, 2.0, 2.0))
        return cls(
            scene=_scene(rng, height * _SS, width * _SS * 3),
            scale=float(rng.uniform(0.82, 0.94)),
            view_p=tuple(float(v) for v in view_p),
            gain=float(rng.uniform(0.65, 1.25)),
            cast=tuple(float(c) for c in cast),
            tint=tuple(float(t) for t in rng.normal(0.0, 10.0, 3)),
            gamma=float(rng.uniform(0.8, 1.25)),
            haze=float(rng.uniform(0.0, 0.2)),
            gradient=(float(rng.uniform(-0.35, 0.35)), float(rng.uniform(-0.25, 0.25))),
            blur=float(rng.uniform(0.0, 0.5)),
            lowres=float(_pick(rng, (1.0, 1.0, 1.0, 1.5))),
            noise=float(rng.uniform(2.0, 7.0)),
        )


def _random_colour(rng: np.random.Generator, lo: float = 0.15, hi: float = 0.85) -> np.ndarray:
    base = rng.uniform(lo, hi) * 255
    return np.clip(base + rng.normal(0, 45, 3), 0, 255)


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A camera's background: wall above a horizon, floor below, texture and blotches."""
    wall, floor = _random_colour(rng), _random_colour(rng, 0.2, 0.7)
    horizon = int(h * rng.uniform(0.45, 0.8))
    img = Image.new("RGB", (w, h), tuple(int(c) for c in wall))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, horizon, w, h], fill=tuple(int(c) for c in floor))
    kind = _pick(rng, ("panels", "bricks", "foliage", "posters"))
    if kind == "panels":
        x = 0
        while x < w:
            pw = int(rng.integers(w // 20, w // 6))
            shade = tuple(int(c) for c in np.clip(wall * rng.uniform(0.6, 1.3), 0, 255))
            draw.rectangle([x, int(h * rng.uniform(0.0, 0.2)), x + pw, horizon], fill=shade)
            x += pw + int(rng.integers(2, w // 12))
    elif kind == "bricks":
        step = int(rng.integers(h // 14, h // 7))
        line = tuple(int(c) for c in wall * 0.6)
        for i, y in enumerate(range(0, horizon, step)):
            draw.line([0, y, w, y], fill=line, width=2)
            for x in range((i % 2) * step, w, 2 * step):
                draw.line([x, y, x, y + step], fill=line, width=2)
    else:
        palette = ((40, 110, 40), (70, 140, 50), (90, 70, 40)) if kind == "foliage" else _CLUTTER
        for _ in range(int(rng.integers(10, 25))):
            cx, cy = rng.uniform(0, w), rng.uniform(0, horizon)
            rx, ry = rng.uniform(0.02, 0.08) * w, rng.uniform(0.04, 0.15) * h
            fill = _pick(rng, palette)
            box = [cx - rx, cy - ry, cx + rx, cy + ry]
            if kind == "foliage":
                draw.ellipse(box, fill=fill)
            else:
                draw.rectangle(box, fill=fill)
    for _ in range(int(rng.integers(0, 4))):  # floor markings
        y = rng.uniform(horizon, h)
        draw.line(
            [0, y, w, y + rng.uniform(-0.1, 0.1) * h], fill=tuple(int(c) for c in floor * 1.3)
        )
    blotch = Image.fromarray(rng.normal(1.0, 0.12, (6, 12)).astype(np.float32), mode="F")
    blotch = np.asarray(blotch.resize((w, h), Image.BILINEAR))[..., None]
    return np.clip(np.asarray(img, dtype=np.float32) * blotch, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------- pose and skeleton


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


def _background(camera: Camera, rng: np.random.Generator, hs: int, ws: int) -> Image.Image:
    """A random ``ws`` x ``hs`` crop of the camera's scene, sometimes with a passer-by."""
    x0 = int(rng.integers(0, camera.scene.shape[1] - ws + 1))
    canvas = Image.fromarray(np.ascontiguousarray(camera.scene[:hs, x0 : x0 + ws]))
    if rng.random() < 0.2:  # a passer-by at the border, behind the person
        left = rng.random() < 0.5
        cx = ws * (rng.uniform(-0.15, 0.05) if left else rng.uniform(0.95, 1.15))
        top = hs * rng.uniform(0.0, 0.3)
        ImageDraw.Draw(canvas).rounded_rectangle(
            [cx - ws * 0.18, top, cx + ws * 0.18, hs * 1.1],
            radius=ws * 0.08,
            fill=_pick(rng, _CLUTTER),
        )
    return canvas


def _occluder(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, hs: int, ws: int
) -> tuple[float, float, float]:
    """Draw a box over the bottom of the canvas; returns its left, right and top in pixels."""
    y0 = hs * rng.uniform(0.8, 0.9)
    x0 = ws * rng.uniform(-0.3, 0.5)
    x1 = x0 + ws * rng.uniform(0.3, 0.8)
    draw.rectangle([x0, y0, x1, hs], fill=_pick(rng, _CLUTTER))
    return x0, x1, y0


def _camera_effects(img: Image.Image, camera: Camera, rng: np.random.Generator) -> Image.Image:
    """Lighting, low resolution, blur and noise of ``camera`` applied to an RGB image."""
    width, height = img.size
    img = Image.fromarray(_photometrics(np.asarray(img, np.float32), camera, rng))
    radius = camera.blur + rng.uniform(0.0, 0.3)
    if camera.lowres > 1:
        small = (max(1, round(width / camera.lowres)), max(1, round(height / camera.lowres)))
        img = img.resize(small, Image.BILINEAR).resize((width, height), Image.BILINEAR)
    if radius > 0.15:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    arr = np.asarray(img, np.float32) + rng.normal(0.0, camera.noise, (height, width, 3))
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))


def _photometrics(img: np.ndarray, cam: Camera, rng: np.random.Generator) -> np.ndarray:
    """Apply the camera's lighting to an ``(H, W, 3)`` float32 0..255 image; returns uint8."""
    h, w, _ = img.shape
    x = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :, None]
    y = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None]
    light = (
        cam.gain * math.exp(rng.normal(0.0, 0.1)) * (1 + cam.gradient[0] * x + cam.gradient[1] * y)
    )
    cast = np.asarray(cam.cast, np.float32) * np.exp(rng.normal(0.0, 0.04, 3)).astype(np.float32)
    out = (img / 255.0) ** cam.gamma * 255.0 * light * cast + np.asarray(cam.tint, np.float32)
    out = out * (1 - cam.haze) + 128.0 * cam.haze
    return np.clip(out, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------- true textures

# Body geometry of a front/back view (body units, see :func:`skeleton`): shoulder and hip
# heights, half-widths at build 1, and the head box from the top of the head to the neck.
_TEX_Y_SH, _TEX_Y_HIP, _TEX_SH_HALF, _TEX_HIP_HALF = 0.18, 0.5, 0.112, 0.062
_TEX_HEAD_TOP, _TEX_NECK = -0.002, 0.138  # head centre 0.068 minus (neck - head)
_TEX_HEAD_HALF = 0.4 * (_TEX_NECK - _TEX_HEAD_TOP)  # head box width = 0.8 x its height
_EYES: RGB = (30, 25, 25)
_TEX_SS = 4  # supersampling factor of the painted texture


def _uv(box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(u, v)`` in ``[0, 1]`` at the pixel centres of a part box, each ``(h, w)`` float64."""
    x0, y0, x1, y1 = box
    u = (np.arange(x1 - x0) + 0.5) / (x1 - x0)
    v = (np.arange(y1 - y0) + 0.5) / (y1 - y0)
    return np.meshgrid(u, v)


def _in_ellipse(x, y, cx, cy, rx, ry) -> np.ndarray:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def _head_texture(ident: Identity, u: np.ndarray, v: np.ndarray, back: bool) -> np.ndarray:
    """The head box painted like :func:`_head` / :func:`_long_hair` (black outside the head)."""
    x = _TEX_HEAD_HALF * (2 * u - 1) * (-1 if back else 1)
    y = _TEX_HEAD_TOP + (_TEX_NECK - _TEX_HEAD_TOP) * v
    out = np.zeros(u.shape + (3,), np.uint8)
    long_hair = ident.long_hair & (y >= 0.06) & (y <= 0.21)
    long_hair &= np.abs(x) <= 0.05 + 0.01 * (y - 0.06) / 0.15
    neck = np.hypot(x, y - np.clip(y, 0.1, 0.15)) <= 0.022  # the neck capsule
    if not back:  # front view order: long hair behind, neck, hair, face, eyes
        out[long_hair] = ident.hair
        out[neck] = ident.skin
        out[_in_ellipse(x, y, 0.0, 0.064, 0.0525, 0.065)] = ident.hair
        out[_in_ellipse(x, y, 0.0, 0.08, 0.043, 0.0533)] = ident.skin
        for ex in (-0.018, 0.018):
            out[_in_ellipse(x, y, ex, 0.076, 0.007, 0.006)] = _EYES
        return out
    out[neck] = ident.skin  # back view: neck, hair, long hair in front
    out[_in_ellipse(x, y, 0.0, 0.068, 0.05, 0.065)] = ident.hair
    out[long_hair] = ident.hair
    return out


def identity_texture(ident: Identity, size: int = body_texture.DEFAULT_SIZE) -> np.ndarray:
    """The true body-surface texture of an identity in the layout of
    :mod:`reid_datasets.body_texture` (the PIT-style ground truth of SAN, Jin et al.
    AAAI 2020, Sec. 3.2: one full-surface texture per person, whatever the view).

    Painted from the identity's attributes with the renderer's own geometry (front/back
    skeleton of :func:`skeleton` at walking phase 0):

    * torso front/back: the shirt colour and its pattern (stripes, checks, dots), the
      pattern sampled at the body coordinates the renderer uses, so the back shows the
      pattern as drawn in a back view (u from the person's right to left);
    * upper arms: shirt, or shirt down to 55 % and skin below (short sleeves); lower
      arms: shirt (long sleeves) or skin;
    * upper legs: trousers, or trousers down to 75 % and skin below (shorts); lower
      legs: trousers or skin (shoes are below the ankle, outside the layout);
    * head front: neck, hair, face and eyes; head back: neck and hair; long hair in
      both; black outside the head shape.

    Bags and the camera's photometrics are not part of the surface. Painted at 4x the
    size and box-downsampled (part borders stay exact: the grid scales by 4).

    Returns:
        uint8 ``(size, size, 3)`` RGB.

    Raises:
        ValueError: ``size`` is not a positive multiple of 16.
    """
    size = body_texture.check_size(size)
    big = Image.fromarray(_paint_texture(ident, size * _TEX_SS))
    return np.asarray(big.reduce(_TEX_SS))


def _paint_texture(ident: Identity, size: int) -> np.ndarray:
    boxes = body_texture.part_boxes(size)
    tex = np.zeros((size, size, 3), np.uint8)
    b = ident.build
    for name, direction in (("torso_front", 1.0), ("torso_back", -1.0)):
        x0, y0, x1, y1 = boxes[name]
        u, v = _uv(boxes[name])
        half = b * (_TEX_SH_HALF * (1 - v) + _TEX_HIP_HALF * v)
        x = direction * half * (2 * u - 1)  # body x as drawn in a front (back) view
        y = _TEX_Y_SH + (_TEX_Y_HIP - _TEX_Y_SH) * v
        patch = np.empty(u.shape + (3,), np.uint8)
        patch[:] = ident.shirt
        if ident.pattern != "plain":
            period = ident.pattern_period
            patch[_pattern_bits(ident.pattern, x % period, y % period, period)] = (
                ident.pattern_colour
            )
        tex[y0:y1, x0:x1] = patch
    for side in ("r", "l"):
        covered = {  # fraction of the strip (from the proximal end) that the clothes cover
            "upper_arm": 1.0 if ident.long_sleeves else 0.55,
            "lower_arm": 1.0 if ident.long_sleeves else 0.0,
            "upper_leg": 0.75 if ident.shorts else 1.0,
            "lower_leg": 0.0 if ident.shorts else 1.0,
        }
        for part, frac in covered.items():
            x0, y0, x1, y1 = boxes[f"{side}_{part}"]
            _, v = _uv(boxes[f"{side}_{part}"])
            cloth = ident.shirt if part.endswith("arm") else ident.trousers
            tex[y0:y1, x0:x1] = np.where((v < frac)[..., None], cloth, ident.skin)
    for name, back in (("head_front", False), ("head_back", True)):
        x0, y0, x1, y1 = boxes[name]
        u, v = _uv(boxes[name])
        tex[y0:y1, x0:x1] = _head_texture(ident, u, v, back)
    return tex


def texture_dirname(size: int) -> str:
    """Folder of the true textures of size ``size`` inside a dataset folder."""
    return f"texture_synthetic_{size}"


def write_textures(folder: Path, params: dict, size: int) -> Path:
    """Write the true texture of every image of a generated dataset (once).

    ``folder/texture_synthetic_<size>/<image stem>.png``, one per image of all three
    parts (flat: the stems are unique); the texture is the identity's
    (:func:`identity_texture`), so all images of a person have the same bytes. The
    folder is written to a temporary sibling and renamed, so it is complete or absent.
    The images, keypoints and the folder hash are untouched.

    Returns:
        The texture folder.
    """
    out = folder / texture_dirname(size)
    if out.is_dir():
        return out
    idents = sample_identities(
        np.random.default_rng([params["seed"], 1]),
        params["num_train_ids"] + params["num_test_ids"],
    )
    encoded: dict[int, bytes] = {}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=folder))
    try:
        for _, sub in PARTS:
            for fname in sorted(os.listdir(folder / sub)):
                pid = int(fname[:4])
                if pid not in encoded:
                    buf = io.BytesIO()
                    img = Image.fromarray(identity_texture(idents[pid - 1], size))
                    img.save(buf, format="PNG", optimize=False)
                    encoded[pid] = buf.getvalue()
                (tmp / (Path(fname).stem + ".png")).write_bytes(encoded[pid])
        publish_folder(tmp, out)  # or a concurrent writer won the race
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _with_textures(split: Split, texdir: Path) -> Split:
    present = set(os.listdir(texdir))

    def attach(samples: Sequence[Sample]) -> list[Sample]:
        out = []
        for s in samples:
            name = Path(s.path).stem + ".png"
            if name not in present:
                raise DatasetError(
                    f"Synthetic texture {texdir / name} of image {s.path} is missing; "
                    f"delete {texdir} to regenerate it"
                )
            out.append(Sample(s.path, s.pid, s.camid, {**s.extras, "texture": str(texdir / name)}))
        return out

    return Split(split.name, attach(split.train), attach(split.query), attach(split.gallery))


# ------------------------------------------------------------------------- dataset


def _params(seed, num_train_ids, num_test_ids, num_cameras, images_per_camera, height, width):
    params = {
        "seed": seed,
        "num_train_ids": num_train_ids,
        "num_test_ids": num_test_ids,
        "num_cameras": num_cameras,
        "images_per_camera": images_per_camera,
        "height": height,
        "width": width,
    }
    for key, value in params.items():  # ints, or strings of ints (from a command line)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            params[key] = value = int(value)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise DatasetError(f"synthetic: {key} must be an int, got {value!r}")
    limits = {
        "num_train_ids": 1,
        "num_test_ids": 1,
        "num_cameras": 2,
        "images_per_camera": 2,
        "height": 32,
        "width": 16,
        "seed": 0,
    }
    for key, low in limits.items():
        if params[key] < low:
            raise DatasetError(f"synthetic: {key} must be >= {low}, got {params[key]}")
    if params["num_cameras"] > 9:
        raise DatasetError(
            f"synthetic: num_cameras must be <= 9 (Market names c1..c9), got {num_cameras}"
        )
    if params["num_train_ids"] + params["num_test_ids"] > 9999:
        raise DatasetError("synthetic: num_train_ids + num_test_ids must be <= 9999 (4-digit pids)")
    return {k: int(v) for k, v in params.items()}


def dataset_dirname(params: dict) -> str:
    """``synthetic-<12 hex>``: a hash of the parameters and :data:`GENERATOR_VERSION`."""
    blob = json.dumps({**params, "generator_version": GENERATOR_VERSION}, sort_keys=True)
    return f"synthetic-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def cache_root() -> Path:
    """``$REIDCORE_CACHE`` if set, else ``~/.cache/reidcore``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "reidcore"


def _header() -> list[str]:
    n = len(JOINTS)
    return ["image", "pid", "camid", "view", *[f"{a}{i}" for a in "xyv" for i in range(n)]]


def generate(folder: Path, params: dict) -> None:
    """Write the dataset described by ``params`` into ``folder`` (which must not exist)."""
    seed, h, w = params["seed"], params["height"], params["width"]
    n_train, n_test = params["num_train_ids"], params["num_test_ids"]
    idents = sample_identities(np.random.default_rng([seed, 1]), n_train + n_test)
    cams = [
        Camera.sample(np.random.default_rng([seed, 2, c]), h, w)
        for c in range(params["num_cameras"])
    ]
    for _, sub in PARTS:
        (folder / sub).mkdir(parents=True)
    rows = []
    for pid, ident in enumerate(idents, start=1):
        for camid, cam in enumerate(cams):
            for k in range(params["images_per_camera"]):
                rng = np.random.default_rng([seed, 3, pid, camid, k])
                pose = Pose.sample(rng, cam.view_p)
                img, kp = render_person(ident, pose, cam, rng, h, w)
                sub = (
                    "bounding_box_train"
                    if pid <= n_train
                    else ("query" if k == 0 else "bounding_box_test")
                )
                rel = f"{sub}/{pid:04d}_c{camid + 1}s1_{k + 1:06d}_00.png"
                img.save(folder / rel, format="PNG", optimize=False)
                rows.append(
                    [
                        rel,
                        pid,
                        camid,
                        pose.view,
                        *[f"{v:.2f}" for v in kp[:, 0]],
                        *[f"{v:.2f}" for v in kp[:, 1]],
                        *[str(int(v)) for v in kp[:, 2]],
                    ]
                )
    rows.sort(key=lambda r: r[0])
    with open(folder / "annotations.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(_header())
        writer.writerows(rows)
    meta = {**params, "generator_version": GENERATOR_VERSION, "joints": list(JOINTS)}
    (folder / "params.json").write_text(json.dumps(meta, indent=2) + "\n")


def index(folder: Path, name: str = "synthetic") -> Split:
    """Read a generated folder into a :class:`~reidcore.data.Split` (no image is opened).

    Raises:
        DatasetError: ``annotations.csv`` is missing or malformed, or a listed image is missing.
    """
    ann = folder / "annotations.csv"
    if not ann.is_file():
        raise DatasetError(
            f"Synthetic cache folder {folder} has no annotations.csv; delete the "
            "folder so that it is generated again"
        )
    present = {
        sub: set(os.listdir(folder / sub)) if (folder / sub).is_dir() else set() for _, sub in PARTS
    }
    part_of = {sub: part for part, sub in PARTS}
    parts: dict[str, list[Sample]] = {part: [] for part, _ in PARTS}
    n = len(JOINTS)
    with open(ann, newline="") as f:
        reader = csv.reader(f)
        if next(reader, None) != _header():
            raise DatasetError(f"{ann} has an unexpected header; delete {folder} to regenerate it")
        for lineno, row in enumerate(reader, start=2):
            sub, _, fname = row[0].partition("/")
            if sub not in part_of or fname not in present[sub] or len(row) != 4 + 3 * n:
                raise DatasetError(
                    f"{ann}:{lineno}: image {folder / row[0]} is missing or the "
                    f"line is malformed; delete {folder} to regenerate it"
                )
            vals = np.asarray(row[4:], np.float32).reshape(3, n).T  # (14, 3): x, y, visible
            parts[part_of[sub]].append(
                Sample(
                    str(folder / row[0]),
                    int(row[1]),
                    int(row[2]),
                    {"keypoints": vals, "view": row[3]},
                )
            )
    for part, sub in PARTS:
        if not parts[part]:
            raise DatasetError(f"{ann} lists no image in {sub}/; delete {folder} to regenerate it")
        parts[part].sort(key=lambda s: s.path)
    return Split(name, parts["train"], parts["query"], parts["gallery"])


def read_synthetic(
    root: str | os.PathLike | None = None,
    seed: int = 0,
    num_train_ids: int = 100,
    num_test_ids: int = 50,
    num_cameras: int = 4,
    images_per_camera: int = 3,
    height: int = 128,
    width: int = 64,
    *,
    textures: int | str = 0,
    name: str = "synthetic",
) -> Split:
    """The synthetic dataset, generated on first use and cached.

    Args:
        root: the cache folder (``--data``); ``None`` -> ``$REIDCORE_CACHE`` or
            ``~/.cache/reidcore``. The dataset lives in ``root/synthetic-<hash>/``.
        seed: the random seed; the same parameters give the same bytes.
        num_train_ids, num_test_ids: identities in the training and test parts.
        num_cameras: cameras (2..9); every identity appears in every camera.
        images_per_camera: images per identity and camera (>= 2); for test ids the
            first is a query, the rest gallery.
        height, width: image size in pixels.
        textures: ``0`` (default): no textures. A multiple of 16 such as 64: also
            write (once, into ``synthetic-<hash>/texture_synthetic_<textures>/``) the
            true body-surface texture of every image, ``textures`` pixels square
            (:func:`identity_texture`, layout :mod:`reid_datasets.body_texture`), and
            set each sample's ``extras["texture"]`` to its path. Opt-in: the images,
            keypoints and the folder's hash do not depend on it.
        name: the :attr:`Split.name`.

    Returns:
        A :class:`~reidcore.data.Split` with ``num_train_ids * num_cameras *
        images_per_camera`` training samples, ``num_test_ids * num_cameras`` queries
        and the rest of the test images as gallery. Each sample's ``extras`` holds
        ``"keypoints"``: ``(14, 3)`` float32 ``[x, y, visible]`` in pixels (joint order
        :data:`JOINTS`) and ``"view"``: ``"front" | "back" | "side"``.

    Raises:
        DatasetError: a parameter is out of range, the cache folder cannot be
            created, or a cached folder is incomplete.
    """
    params = _params(
        seed, num_train_ids, num_test_ids, num_cameras, images_per_camera, height, width
    )
    texture_size = _texture_size(textures)
    parent = Path(root).expanduser() if root is not None else cache_root()
    folder = parent / dataset_dirname(params)
    if not folder.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=parent))
        except OSError as exc:
            raise DatasetError(
                f"Cannot create the synthetic cache folder in {parent}: {exc}; "
                f"pass --data DIR or set {CACHE_ENV}"
            ) from exc
        try:
            generate(tmp / "data", params)
            publish_folder(tmp / "data", folder)  # or a concurrent generator won the race
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    split = index(folder, name)
    if texture_size:
        try:
            texdir = write_textures(folder, params, texture_size)
        except OSError as exc:
            raise DatasetError(f"Cannot write the synthetic textures in {folder}: {exc}") from exc
        split = _with_textures(split, texdir)
    logging.getLogger("reidcore").info("%s (generated in %s)", split.summary(), folder)
    return split


def _texture_size(textures: int | str) -> int:
    """0 (no textures) or a valid texture size, from an int or a command-line string."""
    if isinstance(textures, str) and textures.strip().isdigit():
        textures = int(textures)
    if isinstance(textures, bool) or not isinstance(textures, (int, np.integer)):
        raise DatasetError(
            f"synthetic: textures must be an int (0 or a multiple of 16), got {textures!r}"
        )
    if textures == 0:
        return 0
    try:
        return body_texture.check_size(textures)
    except ValueError as exc:
        raise DatasetError(f"synthetic: textures: {exc}") from exc
