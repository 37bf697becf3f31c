"""Pose maps (one heat map per body joint) and the paired image + keypoint transforms of PSE.

PSE (Sarfraz et al., CVPR 2018, Sec. 3.2) stacks the RGB image with ``J = 14`` joint
confidence maps and feeds the ``3 + J`` channels to the network (the first convolution is
widened). The authors rendered the maps with DeeperCut's part detector (seed README,
``tools/images_to_pose_maps.py``); here the maps are rendered from keypoints as Gaussians
(:func:`render_pose_maps`), so that they can be drawn *after* the geometric augmentation
and stay aligned with the image.

Sizes and coordinates: keypoints are ``(J, 3)`` ``[x, y, confidence]`` in 0-based pixels
with pixel centres at integer coordinates (see :mod:`reid_pse.keypoints`). Resizing an
image of width ``W0`` to ``W`` maps ``x -> (x + 0.5) * W / W0 - 0.5`` (the pixel-centre
convention of ``torchvision``'s antialiased resize), padding adds the pad, cropping
subtracts the crop's offset, a horizontal flip maps ``x -> W - 1 - x`` **and** swaps the
left/right joints (:data:`~reid_pse.keypoints.FLIP_PAIRS`), so that map channel ``j`` is
always the person's joint ``j``. (The authors' TensorFlow code flipped the stacked tensor
without swapping channels; swapping keeps the maps' meaning, which the view-specific
branches rely on.)

Default ``sigma``: DeeperCut marks score-map positives within ``pos_dist_thresh = 17``
pixels of a joint on images scaled to 512 pixels high (the seed's generator scales to
512); :func:`default_sigma` picks the Gaussian whose half maximum lies at that radius,
``sigma = H * 17 / 512 / sqrt(2 ln 2)``: 3.6 pixels for a 128-pixel-high input, 7.2 for 256.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from reid_pse.keypoints import FLIP_PERMUTATION, NUM_JOINTS, as_keypoints
from reidcore.data.transforms import to_normalized

#: Channels of a PSE input: RGB then one map per joint (17).
INPUT_CHANNELS = 3 + NUM_JOINTS
#: DeeperCut's positive radius (pixels) on 512-pixel-high images; see :func:`default_sigma`.
DEEPERCUT_RADIUS, DEEPERCUT_HEIGHT = 17.0, 512.0


def default_sigma(height: int) -> float:
    """Gaussian standard deviation (pixels at the network input) for an input ``height``.

    ``height * 17 / 512 / sqrt(2 ln 2)``: the half-maximum radius equals DeeperCut's positive
    radius relative to the image height (module docstring). 3.61 px at 128, 7.22 px at 256.
    """
    return float(height) * DEEPERCUT_RADIUS / DEEPERCUT_HEIGHT / math.sqrt(2.0 * math.log(2.0))


def render_pose_maps(keypoints, height: int, width: int, sigma: float) -> torch.Tensor:
    """Gaussian heat maps, one per joint, peak 1 at the joint.

    ``map[j, r, c] = exp(-((c - x_j)^2 + (r - y_j)^2) / (2 sigma^2))`` for a joint with
    confidence > 0 and finite coordinates; a missing joint's map is all zeros. A joint at
    integer coordinates inside the image has its maximum (1) exactly there; a joint outside
    the image leaves only its Gaussian tail. Separable and vectorised: ``O(B J (H + W))``
    exponentials, one broadcast product.

    Args:
        keypoints: ``(J, 3)`` or ``(B, J, 3)`` ``[x, y, confidence]`` (tensor or array), in
            0-based pixels of the ``height x width`` output.
        height, width: output size in pixels.
        sigma: standard deviation in output pixels (> 0); see :func:`default_sigma`.

    Returns:
        ``(J, height, width)`` or ``(B, J, height, width)`` float32 (on the keypoints' device
        when a tensor is given).

    Raises:
        ValueError: the last axis is not 3, ``sigma <= 0`` or a size is not positive.
    """
    kp = torch.as_tensor(keypoints, dtype=torch.float32)
    if kp.ndim not in (2, 3) or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must be (J, 3) or (B, J, 3), got {tuple(kp.shape)}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma}")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height}x{width}")
    x, y, conf = kp.unbind(-1)
    present = (conf > 0) & torch.isfinite(x) & torch.isfinite(y)
    x = torch.where(present, x, torch.zeros_like(x))
    y = torch.where(present, y, torch.zeros_like(y))
    inv = -0.5 / float(sigma) ** 2
    cols = torch.arange(width, dtype=torch.float32, device=kp.device)
    rows = torch.arange(height, dtype=torch.float32, device=kp.device)
    gx = torch.exp((cols - x[..., None]) ** 2 * inv) * present[..., None]  # (..., J, W)
    gy = torch.exp((rows - y[..., None]) ** 2 * inv)  # (..., J, H)
    return gy[..., :, None] * gx[..., None, :]


def scale_keypoints(keypoints, source_size: Sequence[int], height: int, width: int):
    """Keypoints of a ``source_size = (H0, W0)`` image -> those of its ``height x width`` resize.

    ``x -> (x + 0.5) * width / W0 - 0.5`` (and likewise ``y``); confidence unchanged.
    Returns a float32 tensor of the input's shape ``(..., J, 3)``.
    """
    kp = torch.as_tensor(keypoints, dtype=torch.float32).clone()
    h0, w0 = int(source_size[0]), int(source_size[1])
    kp[..., 0] = (kp[..., 0] + 0.5) * (width / w0) - 0.5
    kp[..., 1] = (kp[..., 1] + 0.5) * (height / h0) - 0.5
    return kp


def flip_keypoints(keypoints, width: int):
    """Mirror ``(..., J, 3)`` keypoints of a ``width``-pixel image and swap left/right joints."""
    kp = torch.as_tensor(keypoints, dtype=torch.float32).clone()
    kp[..., 0] = (width - 1) - kp[..., 0]
    return kp[..., list(FLIP_PERMUTATION), :]


def flip_pose_input(x: torch.Tensor) -> torch.Tensor:
    """Horizontally flip a batch of PSE inputs ``(B, 3 + J, H, W)`` (test-time flip).

    Mirrors every channel and swaps the left/right joint map channels, giving exactly the
    input that the flipped image with flipped (and relabelled) keypoints would have.
    Also accepts one input ``(3 + J, H, W)``.

    Raises:
        ValueError: the channel axis is not ``3 + J``.
    """
    c = x.shape[-3] if x.ndim >= 3 else -1
    if c != 3 + NUM_JOINTS:
        raise ValueError(f"expected (B, {3 + NUM_JOINTS}, H, W) pose inputs, got {tuple(x.shape)}")
    order = [0, 1, 2, *(3 + j for j in FLIP_PERMUTATION)]
    return x.flip(-1)[..., order, :, :]


def _prepare(image: torch.Tensor, keypoints, source_size, height: int, width: int):
    """Resize ``image`` to ``height x width`` (if needed) and scale the keypoints to it."""
    if image.ndim != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
        raise ValueError(f"image must be a uint8 (3, H, W) tensor, got {image.dtype} "
                         f"{tuple(image.shape)}")
    src = tuple(source_size) if source_size is not None else tuple(image.shape[-2:])
    if tuple(image.shape[-2:]) != (height, width):
        image = F.resize(image, [height, width], antialias=True)
    kp = torch.from_numpy(as_keypoints(keypoints))
    return image, scale_keypoints(kp, src, height, width)


class PoseTestTransform:
    """Test-time PSE input: resize, normalise (as :func:`reidcore.data.transforms.to_normalized`)
    and render the pose maps at the resized size.

    ``transform(image, keypoints, source_size=None) -> (3 + J, height, width)`` float32:
    ImageNet-normalised RGB, then the ``J`` maps of :func:`render_pose_maps`.

    Args:
        height, width: network input size.
        sigma: Gaussian standard deviation in input pixels (``None``: :func:`default_sigma`).

    Call arguments:
        image: uint8 ``(3, H0, W0)``; resized with antialiasing unless already
            ``height x width``.
        keypoints: ``(J, 3)`` 0-based pixels of the image of size ``source_size``.
        source_size: ``(H0, W0)`` of the image the keypoints refer to (default: ``image``'s
            size; give the original size when ``image`` is already resized, e.g. cached).
    """

    def __init__(self, height: int, width: int, sigma: float | None = None):
        self.height, self.width = int(height), int(width)
        self.sigma = float(sigma) if sigma is not None else default_sigma(self.height)
        self._normalize = to_normalized()

    def __call__(self, image: torch.Tensor, keypoints, source_size=None) -> torch.Tensor:
        image, kp = _prepare(image, keypoints, source_size, self.height, self.width)
        maps = render_pose_maps(kp, self.height, self.width, self.sigma)
        return torch.cat([self._normalize(image), maps], dim=0)


class PoseTrainTransform:
    """Training-time PSE input: :func:`reidcore.data.transforms.train_augment` applied to the
    image, with the keypoints moved along, then the pose maps rendered.

    The image path is exactly ``train_augment``'s: resize to ``height x width`` (antialiased,
    as :func:`reidcore.data.dataset.decode`), zero pad by ``pad`` + random crop back
    (``v2.Pad``/``v2.RandomCrop``), random horizontal flip (``v2.RandomHorizontalFlip``),
    ``ToDtype`` + ImageNet normalisation, random erasing (``v2.RandomErasing(p, value=0)``,
    on the RGB channels only) — the same ops and random draws in the same order, so the RGB
    output equals ``train_augment(resized image)`` under the same ``torch`` seed. The
    keypoints go through the same crop and flip as ``tv_tensors.KeyPoints``; after a flip
    the left/right joints are swapped. Maps are then rendered at ``height x width``.
    Needs torchvision >= 0.23 (``tv_tensors.KeyPoints``; ``RuntimeError`` otherwise).

    ``transform(image, keypoints, source_size=None) -> (3 + J, height, width)`` float32
    (call arguments as :class:`PoseTestTransform`).
    """

    def __init__(self, height: int, width: int, pad: int = 10, flip: bool = True,
                 erasing_p: float = 0.0, sigma: float | None = None):
        if not hasattr(tv_tensors, "KeyPoints"):
            import torchvision

            raise RuntimeError(
                "PoseTrainTransform moves keypoints with torchvision.tv_tensors.KeyPoints, "
                f"new in torchvision 0.23; found {torchvision.__version__}: "
                "pip install 'torchvision>=0.23'"
            )
        self.height, self.width = int(height), int(width)
        self.sigma = float(sigma) if sigma is not None else default_sigma(self.height)
        self.pad, self.flip, self.erasing_p = int(pad), bool(flip), float(erasing_p)
        ops: list[v2.Transform] = []
        if self.pad > 0:
            ops += [v2.Pad(self.pad, fill=0), v2.RandomCrop((self.height, self.width))]
        if self.flip:
            ops.append(v2.RandomHorizontalFlip())
        self._geometry = v2.Compose(ops) if ops else None
        self._normalize = to_normalized()
        self._erase = v2.RandomErasing(p=self.erasing_p, value=0) if self.erasing_p > 0 else None

    def __call__(self, image: torch.Tensor, keypoints, source_size=None) -> torch.Tensor:
        image, kp = _prepare(image, keypoints, source_size, self.height, self.width)
        if self._geometry is not None:
            # Two extra markers (0, 0) and (1, 0) reveal whether the random flip happened.
            xy = torch.cat([kp[:, :2], torch.tensor([[0.0, 0.0], [1.0, 0.0]])])
            points = tv_tensors.KeyPoints(xy, canvas_size=(self.height, self.width))
            image, points = self._geometry(image, points)
            points = points.as_subclass(torch.Tensor)
            kp = torch.cat([points[:NUM_JOINTS], kp[:, 2:]], dim=1)
            if points[NUM_JOINTS + 1, 0] < points[NUM_JOINTS, 0]:  # mirrored
                kp = kp[list(FLIP_PERMUTATION)]
        rgb = self._normalize(image)
        if self._erase is not None:
            rgb = self._erase(rgb)
        maps = render_pose_maps(kp, self.height, self.width, self.sigma)
        return torch.cat([rgb, maps], dim=0)


class RGBOnly:
    """A pose transform whose output keeps only the RGB channels (``--no-pose-channels``).

    The image goes through exactly the same resize, padding, crop, flip and erasing as with
    pose maps; only the ``J`` map channels are dropped: ``(3 + J, H, W) -> (3, H, W)``.
    """

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image, keypoints, source_size=None):
        return self.transform(image, keypoints, source_size)[:3]
