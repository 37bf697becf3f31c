"""Why dcnn learned slowly (issue 16): its head trained on frozen backbone features.

The backbone (MobileNetV2 ImageNet features, 128×64, eval mode, no augmentation) embeds the
Market-1501 holdout's training images ONCE; then only the dcnn head (bottleneck, identity
classifier, verification head in the loss) trains on those pooled features with the recipe's
optimizer, learning-rate groups, P×K sampler and loss, for each variant given as recipe
overrides. A step costs milliseconds, so the identification loss's curve over thousands of
iterations shows, per variant, whether the head itself learns, at equal iterations.

    python benchmarks/dcnn_head_probe.py --data ../shared/data/market1501-holdout \
        --weights ../shared/weights/mobilenet_v2_imagenet_features.pth --iterations 600 \
        --variant seed: --variant old:bottleneck_relu=true,verification_normalize=false \
        --output benchmarks/results/dcnn_head_probe.json

A variant is ``NAME:key=value,...`` (DCNNConfig fields; values parsed as JSON, else text).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


class _Pooled(nn.Module):
    """Stands in for the backbone: the input already is the pooled feature ``(B, C, 1, 1)``."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels

    def forward(self, x):
        return x


@torch.no_grad()
def backbone_features(data: str, weights: str, height: int, width: int, cache: Path | None):
    """Pooled backbone features ``(N, C)`` and relabelled pids ``(N,)`` of the training part."""
    if cache is not None and cache.exists():
        saved = torch.load(cache, weights_only=True)
        return saved["features"], saved["labels"]
    from reidcore.data.dataset import ImageDataset
    from reidcore.data.transforms import to_normalized
    from reidcore.registry import create_backbone, load_dataset

    split = load_dataset("market1501", data)
    backbone = create_backbone("mobilenet_v2", pretrained=weights).eval()
    ds = ImageDataset(split.train, split.train_labels, height, width, to_normalized())
    loader = torch.utils.data.DataLoader(ds, batch_size=128)
    feats, labels = [], []
    for x, y, _ in loader:
        feats.append(backbone(x).mean(dim=(2, 3)))
        labels.append(y)
    features, labels = torch.cat(feats), torch.cat(labels)
    if cache is not None:
        torch.save({"features": features, "labels": labels}, cache)
    return features, labels


def train_head(features, labels, overrides: dict, iterations: int, log_every: int, seed: int):
    from reidcore.data.samplers import PKSampler
    from reidcore.engine import schedules
    from reidcore.engine.trainer import build_optimizer
    from reidcore.registry import get_recipe

    recipe = get_recipe("dcnn")
    cfg = recipe.default_config(backbone="mobilenet_v2", pretrained="none", iterations=iterations,
                                seed=seed, **overrides)
    torch.manual_seed(seed)
    num_classes = int(labels.max()) + 1
    model = recipe.build_model(cfg, num_classes)
    model.backbone = _Pooled(features.shape[1])
    criterion = recipe.build_criterion(cfg)
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr_factor": 1.0}]
    loss_params = [p for p in criterion.parameters() if p.requires_grad]
    if loss_params:
        groups.append({"params": loss_params, "lr_factor": 1.0})
    optimizer = build_optimizer(cfg, groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedules.from_config(cfg))
    sampler = PKSampler(labels.tolist(), cfg.batch_p, cfg.batch_k, seed=seed)
    model.train()
    curve, window = [], []
    for it, idx in enumerate(sampler, start=1):
        out = model(features[idx][:, :, None, None])
        loss, stats = criterion(out, labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        window.append(stats)
        if it % log_every == 0:
            mean = {k: sum(s[k] for s in window) / len(window) for k in window[-1]}
            curve.append({"iteration": it, **{k: round(v, 4) for k, v in mean.items()}})
            window = []
        if it >= iterations:
            break
    return cfg, curve


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", action="append", required=True, help="NAME:key=value,...")
    ap.add_argument("--feature-cache", type=Path, help="save/load the backbone features here")
    ap.add_argument("--output", type=Path)
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    features, labels = backbone_features(args.data, args.weights, args.height, args.width,
                                         args.feature_cache)
    print(f"features {tuple(features.shape)} of {int(labels.max()) + 1} ids "
          f"({time.monotonic() - t0:.0f} s)", flush=True)
    results = {}
    for text in args.variant:
        name, overrides = parse_variant(text)
        cfg, curve = train_head(features, labels, overrides, args.iterations, args.log_every, args.seed)
        results[name] = {"overrides": overrides, "curve": curve}
        print(name, overrides)
        for point in curve:
            keys = ("loss/idver", "idver/id_loss", "idver/verif_loss", "idver/verif_accuracy")
            print("  " + " ".join(f"{k} {point[k]}" for k in ("iteration", *keys) if k in point))
    if args.output:
        from reidcore.atomic import atomic_write_json

        atomic_write_json(args.output, {
            "script": "benchmarks/dcnn_head_probe.py", "argv": sys.argv[1:] if argv is None else argv,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "date": time.strftime("%Y-%m-%d"), "num_ids": int(labels.max()) + 1,
            "variants": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
