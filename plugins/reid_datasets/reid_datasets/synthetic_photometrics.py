"""A synthetic camera's lighting, colour cast, haze, low resolution, blur and noise.

Part of :mod:`reid_datasets.synthetic` (see its docstring for the generative model).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from reid_datasets.synthetic_scene import Camera


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
