"""Training throughput: the trinet recipe through reidcore's trainer vs a bare model step.

For each configuration (backbone, input size, P×K) it measures, in the same process:

- ``bare``: the TriNet model and batch-hard loss stepped with Adam on random tensors already
  on the device (no data loading, no logging, no checkpoints): the ceiling;
- ``trainer``: ``reidcore.engine.trainer.train`` with the trinet recipe on the embedded
  ``synthetic`` dataset (decoded images cached in memory), P×K sampling, augmentation,
  logging and a final checkpoint included.

Both run the same number of iterations after the same warm-up, and report images/s; the
ratio trainer / bare is what issue 8 asks to be ≥ 95 %. Results (with the device name) are
written as JSON to benchmarks/results/bench_train_<device>.json.

    python benchmarks/bench_train.py                       # CPU or the GPU when present
    python benchmarks/bench_train.py --configs mobilenet_v2:128x64:16x4 --iterations 20

On a GPU both sides use the trainer's CUDA options: AMP (bf16 where supported, else fp16
with a grad scaler; ``--no-amp`` for fp32), channels_last model and batches
(``--no-channels-last`` to compare), fused Adam, and with ``--compile`` torch.compile
(the trainer's timed run then includes any recompilation: raise ``--iterations``). The
trainer side loads with 8 pinned, persistent DataLoader workers by default. Issue 8's GPU
target: ≥ 2,500 images/s for resnet50:256x128:16x4 with AMP on an H100/H200, trainer ≥ 95 %
of the bare step; the JSON goes to benchmarks/results/bench_train_cuda.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from reidcore.engine.device import amp_dtype, autocast, resolve_device
from reidcore.engine.trainer import train
from reidcore.registry import create_loss, create_model, get_recipe, load_dataset

DEFAULT_CONFIGS = ("resnet50:256x128:16x4", "mobilenet_v2:128x64:16x4")


def parse_config(text: str) -> tuple[str, int, int, int, int]:
    backbone, size, pk = text.split(":")
    h, w = (int(v) for v in size.split("x"))
    p, k = (int(v) for v in pk.split("x"))
    return backbone, h, w, p, k


def bare_rate(backbone: str, h: int, w: int, p: int, k: int, iterations: int, warmup: int,
              device: torch.device, amp: bool, channels_last: bool = False,
              compile: bool = False) -> float:
    """images/s of forward + loss + backward + Adam step on device-resident random tensors.

    On CUDA: fused Adam, and channels_last model and input when ``channels_last``.
    """
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    model = create_model("trinet", backbone=backbone, pretrained="none").to(device).train()
    fmt = torch.channels_last if channels_last and cuda else torch.contiguous_format
    model.to(memory_format=fmt)
    forward = torch.compile(model) if compile else model
    loss_fn = create_loss("batch_hard", margin="soft")
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, **({"fused": True} if cuda else {}))
    dtype = amp_dtype(device, amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    x = torch.randn(p * k, 3, h, w, device=device).contiguous(memory_format=fmt)
    pids = torch.arange(p, device=device).repeat_interleave(k)

    def step():
        with autocast(device, dtype):
            out = forward(x)
        loss = loss_fn(out, pids)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iterations):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return iterations * p * k / (time.perf_counter() - t)


def trainer_rate(backbone: str, h: int, w: int, p: int, k: int, iterations: int, warmup: int,
                 device: torch.device, amp: bool, workers: int, channels_last: bool = False,
                 compile: bool = False) -> float:
    """images/s of the trainer's loop over the last ``iterations`` (after ``warmup``)."""
    recipe = get_recipe("trinet")
    split = load_dataset("synthetic")
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(backbone=backbone, pretrained="none", height=h, width=w, batch_p=p,
                      batch_k=k, cache_images=True, workers=workers, amp=amp,
                      channels_last=channels_last, compile=compile,
                      device=str(device), log_every=10**9, checkpoint_every=10**9,
                      progress=False, tensorboard=False)
        cfg = recipe.default_config(iterations=warmup, **common)
        train(recipe, cfg, split, Path(tmp))  # warm-up run, then resume for the timed part
        cfg = recipe.default_config(iterations=warmup + iterations, **common)
        outcome = train(recipe, cfg, split, Path(tmp))
    return outcome.images_per_second


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                    help="BACKBONE:HxW:PxK ... [%(default)s]")
    ap.add_argument("--iterations", type=int, default=None,
                    help="timed iterations [CPU: 6, CUDA: 50]")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up iterations [CPU: 2, CUDA: 10]")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-amp", action="store_true")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                    help="channels_last model and batches on CUDA [on]")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model [off]")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers [CPU: 0, CUDA: 8]")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    iterations = args.iterations or (50 if cuda else 6)
    warmup = args.warmup or (10 if cuda else 2)
    workers = args.workers if args.workers is not None else (8 if cuda else 0)
    name = torch.cuda.get_device_name(device) if cuda else f"cpu ({os.cpu_count()} cores)"
    results = []
    for text in args.configs:
        backbone, h, w, p, k = parse_config(text)
        bare = bare_rate(backbone, h, w, p, k, iterations, warmup, device, not args.no_amp,
                         args.channels_last, args.compile)
        loop = trainer_rate(backbone, h, w, p, k, iterations, warmup, device, not args.no_amp,
                            workers, args.channels_last, args.compile)
        row = {"config": text, "backbone": backbone, "input": [h, w], "pk": [p, k],
               "bare_images_per_second": bare, "trainer_images_per_second": loop,
               "trainer_over_bare": loop / bare}
        results.append(row)
        print(f"{text:<28} bare {bare:8.1f} img/s   trainer {loop:8.1f} img/s   "
              f"ratio {100 * loop / bare:5.1f} %", flush=True)
    out = args.output or Path(__file__).parent / "results" / (
        f"bench_train_{'cuda' if cuda else 'cpu'}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"device": name, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
               "amp": not args.no_amp, "amp_dtype": str(amp_dtype(device, not args.no_amp)),
               "channels_last": args.channels_last and cuda, "compile": args.compile,
               "iterations": iterations, "warmup": warmup,
               "workers": workers, "platform": platform.platform(),
               "load_average": os.getloadavg(), "results": results}
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
