"""The shipped keypoint estimator ``keypointrcnn``: torchvision's Keypoint R-CNN, mapped to 14 joints.

PSE needs 14 body keypoints per image (Sarfraz et al., CVPR 2018, Sec. 3.2; the authors used
DeeperCut). Where no keypoint file exists (Duke, MSMT17, CUHK03, the user's own images), this
estimator runs ``torchvision.models.detection.keypointrcnn_resnet50_fpn`` (He et al., "Mask
R-CNN", ICCV 2017; COCO person keypoints) and maps its 17 COCO keypoints to the Market-1501
body-point order of :data:`reid_pse.keypoints.JOINTS`.

Mapping (:func:`coco_to_joints`; COCO index in brackets):

=========== ===================================================================
joint       from COCO
=========== ===================================================================
head        derived: ``f + 0.5 (f - neck)``, ``f`` the confidence-weighted mean of the
            confident face points nose [0], eyes [1, 2], ears [3, 4]; the face centre
            moved half its distance to the neck further up, towards the top of the head
            where the Market-1501 annotation puts it (an anthropometric rule of thumb, not
            fitted); ``f`` itself when the neck is missing. Confidence: the mean of the
            face points used.
neck        derived: midpoint of the shoulders [5, 6]; confidence the smaller of the two;
            missing unless both shoulders are confident.
r_shoulder  right shoulder [6];  r_elbow [8];  r_wrist [10]
l_shoulder  left shoulder [5];   l_elbow [7];  l_wrist [9]
r_hip       right hip [12];      r_knee [14];  r_ankle [16]
l_hip       left hip [11];       l_knee [13];  l_ankle [15]
=========== ===================================================================

COCO's left/right are the person's, as in the Market-1501 annotation, so the mapping commutes
with a horizontal flip (flip COCO with its own left/right pairs, map; or map, then flip with
:data:`reid_pse.keypoints.FLIP_PERMUTATION`: the same keypoints).

Confidence of a COCO keypoint: ``box score x sigmoid(keypoint score)``, where the box score is
the person detection's (in ``[0, 1]``) and the keypoint score the heatmap logit torchvision
returns (``keypoints_scores``). Joints below ``min_confidence`` (default 0.2, chosen and not
tuned: the COCO weights cannot be downloaded where this was written) are missing
(confidence 0, ``x = y = 0``), so no pose map is drawn for them. Per image the detection
with the highest box score is used (a re-ID image is a crop of one person); an image with no
detection gets all 14 joints missing.

Coordinates: torchvision's are continuous (pixel ``i`` spans ``[i, i + 1)``); ours put pixel
centres at integers, so 0.5 is subtracted.

Weights (``weights=``): ``None`` / ``"coco"`` downloads torchvision's COCO weights
(``KeypointRCNN_ResNet50_FPN_Weights.COCO_V1``) into the torch hub cache on first use; a path
loads that state dict file (the same ``.pth``, fetched elsewhere); ``"random"`` keeps random
initialisation (for tests of the plumbing only: its keypoints are meaningless; not ``"none"``,
which ``--dataset-option`` turns into ``None``, the download). Offline, the
download fails with a :class:`~reidcore.errors.WeightsError` naming the URL, the cache folder
and ``--weights PATH``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reidcore.errors import WeightsError

#: COCO's 17 person keypoints, in the order Keypoint R-CNN returns them.
COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
#: Left/right COCO pairs that swap under a horizontal flip.
COCO_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
#: Our joints 2..13 taken directly from these COCO keypoints (head and neck are derived).
DIRECT = {2: 6, 3: 8, 4: 10, 5: 5, 6: 7, 7: 9, 8: 12, 9: 14, 10: 16, 11: 11, 12: 13, 13: 15}
#: COCO face keypoints averaged for the head.
FACE = (0, 1, 2, 3, 4)
#: How far beyond the face centre, in face-to-neck distances, the head point lies.
HEAD_EXTENSION = 0.5
#: Default confidence below which a joint is missing.
MIN_CONFIDENCE = 0.2
#: Values of ``weights`` that download torchvision's COCO weights.
DOWNLOAD = (None, "", "coco", "default")
#: Value of ``weights`` that keeps random initialisation (tests only).
RANDOM = "random"


def coco_to_joints(coco, min_confidence: float = MIN_CONFIDENCE) -> np.ndarray:
    """Map COCO keypoints to the 14 Market-1501 body points (table in the module docstring).

    Args:
        coco: ``(..., 17, 3)`` ``[x, y, confidence]``, 0-based pixels, confidence in ``[0, 1]``.
        min_confidence: COCO keypoints (and derived joints) below it are missing.

    Returns:
        ``(..., 14, 3)`` float32; a missing joint is ``(0, 0, 0)``.

    Raises:
        ValueError: ``coco`` is not ``(..., 17, 3)``.
    """
    kp = np.asarray(coco, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-2:] != (17, 3):
        raise ValueError(f"COCO keypoints must be (..., 17, 3), got {kp.shape}")
    xy, conf = kp[..., :2], np.where(kp[..., 2] >= min_confidence, kp[..., 2], 0.0)
    out = np.zeros((*kp.shape[:-2], 14, 3), np.float64)
    for ours, theirs in DIRECT.items():
        out[..., ours, :2] = xy[..., theirs, :]
        out[..., ours, 2] = conf[..., theirs]
    # neck: both shoulders
    neck_conf = np.minimum(conf[..., 5], conf[..., 6])
    neck = 0.5 * (xy[..., 5, :] + xy[..., 6, :])
    out[..., 1, :2], out[..., 1, 2] = neck, neck_conf
    # head: weighted face centre, pushed away from the neck
    w = conf[..., FACE]  # (..., 5)
    total = w.sum(-1)
    used = (w > 0).sum(-1)
    safe = np.where(total > 0, total, 1.0)
    face = (w[..., None] * xy[..., FACE, :]).sum(-2) / safe[..., None]
    has_neck = (neck_conf > 0)[..., None]
    head = np.where(has_neck, face + HEAD_EXTENSION * (face - neck), face)
    out[..., 0, :2] = head
    out[..., 0, 2] = np.where(used > 0, total / np.maximum(used, 1), 0.0)
    missing = out[..., 2] <= 0
    out[missing] = 0.0
    return out.astype(np.float32)


def flip_coco(coco, width: int) -> np.ndarray:
    """COCO keypoints of the horizontally flipped ``width``-pixel image (0-based pixels)."""
    kp = np.array(coco, dtype=np.float64, copy=True)
    perm = list(range(17))
    for a, b in COCO_FLIP_PAIRS:
        perm[a], perm[b] = b, a
    kp = kp[..., perm, :]
    kp[..., 0] = (width - 1) - kp[..., 0]
    return kp


def detections_to_coco(output: dict) -> np.ndarray:
    """One image's Keypoint R-CNN output -> ``(17, 3)`` ``[x, y, confidence]`` of its best person.

    ``output``: torchvision's dict with ``boxes``, ``scores`` ``(D,)``, ``keypoints``
    ``(D, 17, 3)`` (continuous pixels) and ``keypoints_scores`` ``(D, 17)`` (heatmap logits).
    Confidence: ``score x sigmoid(keypoint score)``; ``x, y`` minus 0.5 (pixel centres at
    integers). No detection: all zeros.
    """
    import torch

    scores = output["scores"].detach().float().cpu()
    if scores.numel() == 0:
        return np.zeros((17, 3), np.float32)
    best = int(scores.argmax())
    xy = output["keypoints"][best, :, :2].detach().float().cpu() - 0.5
    conf = scores[best] * torch.sigmoid(output["keypoints_scores"][best].detach().float().cpu())
    return torch.cat([xy, conf[:, None]], 1).numpy().astype(np.float32)


def build_model(weights=None, *, min_size: int = 800, max_size: int = 1333,
                proposals: int = 1000, progress: bool = True):
    """Keypoint R-CNN (ResNet-50 FPN) in eval mode, on the CPU.

    It keeps one detection per image (``box_detections_per_img=1``: the highest box score,
    the only one used), so the keypoint head runs once per image.

    Args:
        weights: see the module docstring (``None``/``"coco"``: download; a path; ``"random"``).
        min_size, max_size: torchvision's resize of the input (shorter side, cap of the
            longer side), in pixels; the COCO weights were trained at 640-800.
        proposals: region proposals kept per image before and after the RPN's NMS
            (torchvision's default 1000; fewer is faster).
        progress: show the download's progress bar.

    Raises:
        WeightsError: the download fails (offline: names the URL, the cache folder and
            ``--weights PATH``), or the file is missing, unreadable or of another model.
    """
    import torch
    from torchvision.models.detection import keypointrcnn_resnet50_fpn

    from reidcore.backbones.weights import load_exact

    state, source = None, None
    if not (isinstance(weights, str) and weights.lower() == RANDOM):
        state, source = _state_dict(weights, progress)  # before the (slow) construction
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random initialisation (weights="random") is reproducible
        model = keypointrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=2, num_keypoints=17,
            min_size=min_size, max_size=max_size, box_detections_per_img=1,
            rpn_pre_nms_top_n_test=proposals, rpn_post_nms_top_n_test=proposals)
    if state is not None:
        load_exact(model, state, source)
    return model.eval()


def _state_dict(weights, progress: bool):
    """``(state dict, source)`` of torchvision's download or a local file (raises WeightsError)."""
    import torch
    from torchvision.models.detection import KeypointRCNN_ResNet50_FPN_Weights

    from reidcore.backbones.weights import load_state_dict_file

    if weights in DOWNLOAD or (isinstance(weights, str) and weights.lower() in DOWNLOAD):
        spec = KeypointRCNN_ResNet50_FPN_Weights.COCO_V1
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        try:
            return spec.get_state_dict(progress=progress, check_hash=True), spec.url
        except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
            raise WeightsError(
                f"cannot get torchvision's Keypoint R-CNN weights ({spec.url}) into {cache}: "
                f"{type(exc).__name__}: {exc}. Without internet access, download that file "
                "elsewhere and pass --weights PATH (reader option keypoint_weights=PATH), "
                f"or copy it into {cache}/"
            ) from exc
    path = Path(os.fspath(weights)).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"Keypoint R-CNN weights file not found: {str(path)!r} (--weights PATH: a state "
            "dict of keypointrcnn_resnet50_fpn such as torchvision's "
            "keypointrcnn_resnet50_fpn_coco-fc266e95.pth; omit --weights to download it)"
        )
    return load_state_dict_file(path), str(path)


@functools.lru_cache(maxsize=1)
def _cached_model(weights, min_size: int, max_size: int, proposals: int, device: str):
    return build_model(weights, min_size=min_size, max_size=max_size,
                       proposals=proposals).to(device)


def default_device() -> str:
    """``"cuda"`` when a GPU is visible to torch, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def keypointrcnn(
    paths: Sequence[str],
    *,
    weights: str | os.PathLike | None = None,
    batch_size: int = 8,
    device: str | None = None,
    min_size: int = 800,
    max_size: int = 1333,
    proposals: int = 1000,
    min_confidence: float = MIN_CONFIDENCE,
    progress: bool = True,
) -> np.ndarray:
    """Estimate the 14 body keypoints of each image (the ``keypointrcnn`` estimator).

    Args:
        paths: image files (any size; read with :func:`reidcore.data.images.load_image`).
        weights: ``None``/``"coco"`` (torchvision's download), a state dict path, or
            ``"random"`` (random initialisation, tests only).
        batch_size: images per forward pass (>= 1).
        device: ``"cuda"``, ``"cpu"``, ... (default: CUDA when present).
        min_size, max_size: torchvision's input resize, pixels (see :func:`build_model`).
        proposals: RPN proposals per image (see :func:`build_model`).
        min_confidence: joints below it are missing (see :func:`coco_to_joints`).
        progress: show a tqdm progress bar (on stderr).

    Returns:
        ``(N, 14, 3)`` float32 ``[x, y, confidence]``, 0-based pixels of each original image.

    Raises:
        WeightsError: see :func:`build_model`.
        ImageReadError: an image cannot be decoded (names it).
        ValueError: ``batch_size < 1``.
    """
    import torch
    from torchvision.transforms.v2 import functional as F
    from tqdm import tqdm

    from reidcore.data.images import load_image

    batch_size, min_confidence = int(batch_size), float(min_confidence)  # strings accepted
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = device or default_device()
    key = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    model = _cached_model(key, int(min_size), int(max_size), int(proposals), str(device))
    paths = list(paths)
    out = np.zeros((len(paths), 14, 3), np.float32)
    bar = tqdm(total=len(paths), desc="keypointrcnn", unit="img", disable=not progress)
    with bar, torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            images = [F.to_dtype(F.pil_to_tensor(load_image(p)), torch.float32, scale=True)
                      .to(device) for p in chunk]
            for i, det in enumerate(model(images)):
                out[start + i] = coco_to_joints(detections_to_coco(det), min_confidence)
            bar.update(len(chunk))
    return out
