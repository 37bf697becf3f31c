"""Cameras of the synthetic dataset: background scenes, their photometric parameters,
and the per-image background crop, passer-by and occluder.

Part of :mod:`reid_datasets.synthetic` (see its docstring for the generative model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from reid_datasets.synthetic_identities import _CLUTTER, _pick

_SS = 2  # supersampling factor of the drawing canvas


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
