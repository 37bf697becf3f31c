"""A plain, independent strong-baseline script: the yardstick of every reidcore recipe.

Luo et al., "Bag of Tricks and A Strong Baseline for Deep Person Re-identification" (CVPR
Workshops 2019) in plain torch + torchvision, importing NOTHING from reidcore, so that a
recipe reaching less than this at the same budget has a bug, not an excuse:

* MobileNetV2 ImageNet features (a state dict with torchvision's ``features.*`` keys), last
  stride 1, global average pooling -> f_t -> BatchNorm1d without shift (BNNeck) -> f_i ->
  bias-free classifier;
* input 128x64: resize, zero-pad 10 + random crop, flip, ImageNet normalisation, random erasing
  p = 0.5 (area 2-40 %, aspect 0.3-3.33);
* P x K = 16 x 4 batches; loss = cross-entropy with label smoothing 0.1 on the classifier
  + batch-hard triplet (margin 0.3, euclidean) on f_t;
* Adam, lr 3.5e-4, weight decay 5e-4; the paper's schedule (linear warm-up from 0.1x over 10
  of 120 epochs, x0.1 at epochs 40 and 70) laid over the time budget: the lr factor is a
  function of elapsed / budget, so the whole schedule runs whatever the machine's speed;
* test: f_i of each query and gallery image, L2-normalised, cosine distance; Market-1501
  protocol (gallery images of the query's pid and camera and junk pid -1 are excluded;
  queries without a valid match are skipped); rank-1/5/10, mAP (step AP, torchreid's), mINP.

    python benchmarks/reference/bot_reference.py --data ../shared/data/market1501-holdout \
        --weights ../shared/weights/mobilenet_v2_imagenet_features.pth --minutes 15 \
        --output benchmarks/results/reference_seed0.json [--embeddings-dir DIR]

``--embeddings-dir`` also writes ``query.h5`` / ``gallery.h5`` (datasets ``embs``, ``pids``,
``camids``, ``paths``; triplet-reid's layout) so a re-ranker can be evaluated on them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

NAME = re.compile(r"^(-?\d+)_c(\d+)")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def read_folder(folder: Path) -> list[tuple[str, int, int]]:
    """``(path, pid, camid)`` of every ``PPPP_cC*.jpg`` in ``folder`` (pid -1: junk)."""
    if not folder.is_dir():
        sys.exit(f"error: {folder} does not exist (expected the Market-1501 layout)")
    items = []
    for path in sorted(folder.glob("*.jpg")):
        m = NAME.match(path.name)
        if m is None:
            sys.exit(f"error: {path} is not named like 0002_c1s1_000451_03.jpg")
        items.append((str(path), int(m.group(1)), int(m.group(2))))
    if not items:
        sys.exit(f"error: {folder} holds no .jpg image")
    return items


def load_images(items, height: int, width: int) -> torch.Tensor:
    """uint8 ``(N, 3, height, width)``: every image decoded and resized once."""
    out = torch.empty((len(items), 3, height, width), dtype=torch.uint8)
    for i, (path, _pid, _cam) in enumerate(items):
        img = decode_image(path, mode=ImageReadMode.RGB)
        out[i] = v2.functional.resize(img, [height, width], antialias=True)
    return out


class Net(nn.Module):
    """MobileNetV2 features (last stride 1) -> GAP -> f_t -> BNNeck -> f_i -> classifier."""

    def __init__(self, weights: str, num_classes: int, last_stride: int = 1):
        super().__init__()
        mobilenet = torchvision.models.mobilenet_v2(weights=None)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        missing, unexpected = mobilenet.load_state_dict(state, strict=False)
        if unexpected or any(k.startswith("features.") for k in missing):
            sys.exit(f"error: {weights} does not match torchvision's MobileNetV2 features")
        self.features = mobilenet.features
        if last_stride == 1:  # the depthwise conv of the first 160-channel block
            [m for m in self.features.modules()
             if isinstance(m, nn.Conv2d) and m.stride == (2, 2)][-1].stride = (1, 1)
        self.bnneck = nn.BatchNorm1d(1280)
        self.bnneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(1280, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x):
        f_t = self.features(x).mean(dim=(2, 3))
        f_i = self.bnneck(f_t)
        return f_t, f_i, self.classifier(f_i)


def batch_hard(f: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Hermans et al. 2017, eq. 5, hinge margin, euclidean distances."""
    d = torch.cdist(f, f).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    d_pos = d.masked_fill(~same, float("-inf")).amax(1)
    d_neg = d.masked_fill(same, float("inf")).amin(1)
    return F.relu(d_pos - d_neg + margin).mean()


def pk_batches(labels: list[int], p: int, k: int, rng: random.Random):
    """Endless P x K batches: P random identities, K images each (with replacement if fewer)."""
    by_pid: dict[int, list[int]] = {}
    for i, pid in enumerate(labels):
        by_pid.setdefault(pid, []).append(i)
    pids = sorted(by_pid)
    while True:
        batch = []
        for pid in rng.sample(pids, p):
            pool = by_pid[pid]
            batch += rng.sample(pool, k) if len(pool) >= k else rng.choices(pool, k=k)
        yield batch


def lr_factor(progress: float) -> float:
    """The paper's schedule over 120 epochs, as a function of the fraction of the budget."""
    epoch = 120.0 * progress
    warm = 0.1 + 0.9 * epoch / 10.0 if epoch < 10 else 1.0
    return warm * (0.1 ** ((epoch >= 40) + (epoch >= 70)))


@torch.no_grad()
def embed(model: Net, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    model.eval()
    norm = v2.Normalize(MEAN, STD)
    feats = [model(norm(images[i:i + batch].float() / 255))[1] for i in range(0, len(images), batch)]
    return F.normalize(torch.cat(feats), dim=1)


def evaluate(dist: np.ndarray, q_pids, q_cams, g_pids, g_cams) -> dict:
    """Market-1501 protocol: CMC, step AP (mean precision at the hits) and mINP."""
    order = np.argsort(dist, axis=1, kind="stable")
    cmc = np.zeros(dist.shape[1])
    aps, inps, skipped = [], [], 0
    for i in range(len(q_pids)):
        o = order[i]
        keep = ~(((g_pids[o] == q_pids[i]) & (g_cams[o] == q_cams[i])) | (g_pids[o] == -1))
        hits = (g_pids[o][keep] == q_pids[i])
        if not hits.any():
            skipped += 1
            continue
        pos = np.flatnonzero(hits)
        cmc[pos[0]:] += 1
        aps.append(np.mean((np.arange(len(pos)) + 1) / (pos + 1)))
        inps.append(len(pos) / (pos[-1] + 1))
    n = len(aps)
    return {"rank1": cmc[0] / n, "rank5": cmc[4] / n, "rank10": cmc[9] / n, "mAP": float(np.mean(aps)),
            "mINP": float(np.mean(inps)), "num_valid_queries": n, "num_skipped": skipped}


def write_h5(path: Path, embs: torch.Tensor, items) -> None:
    import h5py

    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("embs", data=embs.numpy().astype(np.float32))
        f.create_dataset("pids", data=np.array([p for _, p, _ in items], dtype=np.int64))
        f.create_dataset("camids", data=np.array([c for _, _, c in items], dtype=np.int64))
        f.create_dataset("paths", data=[s for s, _, _ in items], dtype=h5py.string_dtype("utf-8"))
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="Market-1501 layout folder")
    ap.add_argument("--weights", required=True, help="MobileNetV2 features state dict (.pth)")
    ap.add_argument("--minutes", type=float, required=True, help="training time budget")
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch-p", type=int, default=16)
    ap.add_argument("--batch-k", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3.5e-4)
    ap.add_argument("--last-stride", type=int, choices=(1, 2), default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--output", help="results JSON")
    ap.add_argument("--embeddings-dir", help="also write query.h5 and gallery.h5 here")
    args = ap.parse_args(argv)
    if args.minutes <= 0:
        ap.error("--minutes must be > 0")
    root = Path(args.data)
    train, query, gallery = (read_folder(root / f) for f in ("bounding_box_train", "query", "bounding_box_test"))
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    train = [t for t in train if t[1] > 0]  # no junk (-1) or distractors (0) in training
    relabel = {pid: i for i, pid in enumerate(sorted({p for _, p, _ in train}))}
    labels = [relabel[p] for _, p, _ in train]
    t0 = time.monotonic()
    train_images = load_images(train, args.height, args.width)
    print(f"decoded {len(train)} training images of {len(relabel)} ids in {time.monotonic() - t0:.0f} s",
          flush=True)
    augment = v2.Compose([
        v2.Pad(10, fill=0), v2.RandomCrop((args.height, args.width)), v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD),
        v2.RandomErasing(p=0.5, scale=(0.02, 0.4), ratio=(0.3, 3.33), value=list(MEAN)),
    ])
    model = Net(args.weights, len(relabel), args.last_stride)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=5e-4)
    budget = args.minutes * 60
    model.train()
    it, start, loss_sum = 0, time.monotonic(), 0.0
    for batch in pk_batches(labels, args.batch_p, args.batch_k, rng):
        progress = (time.monotonic() - start) / budget
        if progress >= 1:
            break
        for g in optimizer.param_groups:
            g["lr"] = args.lr * lr_factor(progress)
        x = torch.stack([augment(train_images[i]) for i in batch])
        y = torch.tensor([labels[i] for i in batch])
        f_t, _f_i, logits = model(x)
        ce = F.cross_entropy(logits, y, label_smoothing=0.1)
        loss = ce + batch_hard(f_t, y, 0.3)
        if not math.isfinite(loss.item()):
            sys.exit(f"error: loss became {loss.item()} at iteration {it}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        it += 1
        loss_sum += loss.item()
        if it % args.log_every == 0:
            print(f"iter {it} {time.monotonic() - start:.0f}s loss {loss_sum / args.log_every:.4f} "
                  f"id {ce.item():.4f} lr {optimizer.param_groups[0]['lr']:.3g}", flush=True)
            loss_sum = 0.0
    seconds = time.monotonic() - start
    q_images, g_images = load_images(query, args.height, args.width), load_images(gallery, args.height, args.width)
    qf, gf = embed(model, q_images), embed(model, g_images)
    dist = (1 - qf @ gf.T).numpy()
    arr = lambda items, j: np.array([t[j] for t in items])  # noqa: E731
    result = evaluate(dist, arr(query, 1), arr(query, 2), arr(gallery, 1), arr(gallery, 2))
    result.update(iterations=it, train_seconds=round(seconds, 1),
                  images_per_second=round(it * args.batch_p * args.batch_k / max(seconds, 1e-9), 1))
    print(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))
    if args.embeddings_dir:
        out = Path(args.embeddings_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_h5(out / "query.h5", qf, query)
        write_h5(out / "gallery.h5", gf, gallery)
    if args.output:
        record = {"script": "benchmarks/reference/bot_reference.py", "args": vars(args), "result": result,
                  "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                              "torch": torch.__version__, "threads": torch.get_num_threads()},
                  "date": time.strftime("%Y-%m-%d")}
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
