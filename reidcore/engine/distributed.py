"""Data-parallel training with PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

``torchrun --nproc_per_node N -m reidcore run RECIPE ...`` starts N processes with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in their
environment. :func:`setup` turns that environment into a ``torch.distributed`` process
group (NCCL with one GPU per process, ``cuda:LOCAL_RANK``; Gloo on the CPU). Without
those variables nothing is initialised and every helper here is a no-op that returns its
input, so a plain ``python -m reidcore run`` behaves exactly as a single process.

The rules the core follows under DDP:

* each rank draws its identities of the global P×K batch
  (:class:`reidcore.data.samplers.DistributedPKSampler`);
* the model is wrapped in ``DistributedDataParallel`` (gradients averaged over ranks);
  with ``--gather-embeddings`` the batch's outputs are all-gathered
  (:func:`gather_batch`) so that the loss (batch-hard mining) sees the global batch;
* only rank 0 writes the experiment folder (args.json, train.log, checkpoints,
  TensorBoard events, embeddings, report.json); the others wait at barriers;
* embedding extraction is sharded: each rank embeds a contiguous part of the images
  and :func:`gather_rows` reassembles them in order.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from reidcore.engine.device import resolve_device

log = logging.getLogger("reidcore")
T = TypeVar("T")

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def env_ranks() -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` from the torchrun environment, or None outside it.

    Raises:
        ValueError: ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` is set but not an integer.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    try:
        return (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError as exc:
        raise ValueError(f"bad torchrun environment {[os.environ.get(v) for v in ENV_VARS]}: "
                         f"{exc}") from None


def is_distributed() -> bool:
    """True when a ``torch.distributed`` process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0, and in a single process: the process that writes files."""
    return rank() == 0


def setup(device_name: str = "auto") -> torch.device:
    """The training device; under torchrun also the process group (idempotent).

    Outside torchrun this is :func:`reidcore.engine.device.resolve_device`. Under torchrun
    a CUDA device (``auto`` with a GPU, ``cuda``, ``cuda:N``) becomes ``cuda:LOCAL_RANK``
    with the NCCL backend; ``cpu`` (or no GPU) uses Gloo. The group lives until the
    process exits (:func:`shutdown` is registered with ``atexit``), so several runs in one
    process share it.

    Raises:
        ValueError: CUDA asked for but missing, or a bad torchrun environment.
    """
    env = env_ranks()
    device = resolve_device(device_name)
    if env is None:
        return device
    _rank, _world, local_rank = env
    if device.type == "cuda":
        if device.index is not None and device.index != local_rank:
            log.warning("--device %s ignored under torchrun: rank %d uses cuda:%d", device_name,
                        _rank, local_rank)
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not is_distributed():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
        atexit.register(shutdown)
    return device


def shutdown() -> None:
    """Destroy the process group when one is initialised."""
    if is_distributed():
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    """Where collective tensors live: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def broadcast_object(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (a picklable object; identity in a single process)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def run_on_main(fn: Callable[[], T]) -> T | None:
    """Call ``fn()`` on rank 0 only; every rank raises if it failed there.

    Returns ``fn()``'s result on rank 0 (and in a single process), None on other ranks.

    Raises:
        the exception of ``fn`` on rank 0; on the other ranks a
        :class:`reidcore.errors.ReidError` repeating its message.
    """
    if not is_distributed():
        return fn()
    from reidcore.errors import ReidError

    result, error, message = None, None, None
    if is_main():
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
            error, message = exc, str(exc)
    message = broadcast_object(message)
    if error is not None:
        raise error
    if message is not None:
        raise ReidError(f"rank 0 failed: {message}")
    return result


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the others (e.g. a dataset that caches files)."""
    if not is_distributed():
        yield
        return
    if is_main():
        try:
            yield
        finally:
            barrier()
    else:
        barrier()
        yield


def gather_rows(x: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """All ranks' ``x`` concatenated along dim 0 in rank order (no gradient).

    Args:
        x: this rank's ``(sizes[rank], ...)`` tensor; the other dims equal on all ranks.
        sizes: every rank's number of rows (uneven sizes are padded for the collective).

    Returns:
        ``(sum(sizes), ...)`` tensor on ``x``'s device with ``x``'s dtype; ``x`` itself in
        a single process.

    Raises:
        ValueError: ``x`` does not have ``sizes[rank]`` rows or ``len(sizes)`` is not the
            world size.
    """
    if not is_distributed():
        return x
    r, w = rank(), world_size()
    if len(sizes) != w or x.shape[0] != sizes[r]:
        raise ValueError(f"gather_rows: rank {r} has {x.shape[0]} rows, sizes {list(sizes)} "
                         f"for {w} ranks")
    pad = max(sizes)
    comm = _comm_device()
    buf = torch.zeros((pad, *x.shape[1:]), dtype=x.dtype, device=comm)
    buf[:x.shape[0]] = x.detach().to(comm)
    parts = [torch.empty_like(buf) for _ in range(w)]
    dist.all_gather(parts, buf)
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)]).to(x.device)


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by ``factor``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.factor, None


def all_gather_with_grad(x: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """:func:`gather_rows`, differentiable with respect to this rank's rows.

    Every rank computes the same loss ``L`` of the gathered batch; the gradient of the
    local rows is multiplied by the world size ``W``, so that DDP's average over ranks
    of ``W * dL/dx_r * dx_r/dθ`` is exactly ``dL/dθ`` of a single process that saw the
    whole batch (the same total as the backward of ``torch.distributed.nn.all_gather``,
    which sums the W identical copies, without a collective in the backward pass).
    """
    if not is_distributed():
        return x
    r, w = rank(), world_size()
    full = gather_rows(x, sizes)
    start = sum(sizes[:r])
    local = _ScaleGradient.apply(x, float(w))
    return torch.cat([full[:start], local, full[start + sizes[r]:]])


def gather_batch(outputs: Any, labels: torch.Tensor, targets: Mapping[str, torch.Tensor] | None,
                 sizes: Sequence[int]) -> tuple[Any, torch.Tensor, dict | None]:
    """The global batch's ``(outputs, labels, targets)`` from every rank's part.

    Every tensor with ``sizes[rank]`` rows (per-sample outputs such as ``embedding``
    ``(B, D)`` and ``logits``; labels; per-sample targets) is all-gathered in rank order,
    with the gradient of the local rows (:func:`all_gather_with_grad`); other values pass
    through. ``outputs`` may be a tensor or a dict of them.
    """
    if not is_distributed():
        return outputs, labels, dict(targets) if targets is not None else None
    local = sizes[rank()]

    def gather(v):
        if torch.is_tensor(v) and v.ndim >= 1 and v.shape[0] == local:
            return all_gather_with_grad(v, sizes) if v.requires_grad else gather_rows(v, sizes)
        return v

    if isinstance(outputs, Mapping):
        outputs = {k: gather(v) for k, v in outputs.items()}
    else:
        outputs = gather(outputs)
    labels = gather_rows(labels, sizes)
    if targets is not None:
        targets = {k: gather(v) for k, v in targets.items()}
    return outputs, labels, targets


def average_floats(values: Mapping[str, float], weight: float | None = None) -> dict[str, float]:
    """Each value averaged over ranks (same keys on every rank); NaN/inf propagate.

    ``weight``: this rank's weight in the average (the weights of all ranks sum to 1,
    e.g. its share of the batch, so that per-sample means average to the global batch's
    mean); default ``1 / world_size``.
    """
    if not is_distributed():
        return dict(values)
    keys = list(values)
    w = 1.0 / world_size() if weight is None else float(weight)
    t = torch.tensor([float(values[k]) * w for k in keys], dtype=torch.float64,
                     device=_comm_device())
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))


def max_ints(values: Sequence[int]) -> list[int]:
    """Element-wise maximum over ranks (e.g. a stop flag any rank may have raised)."""
    if not is_distributed():
        return [int(v) for v in values]
    t = torch.tensor([int(v) for v in values], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [int(v) for v in t.tolist()]


def average_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Average ``p.grad`` over ranks in place (parameters outside DDP, e.g. a loss's).

    A parameter without a gradient on this rank takes part with zeros (every rank must
    join each collective), so it ends with the other ranks' average.
    """
    if not is_distributed():
        return
    w = world_size()
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= w


def rank_seed(seed: int, iteration: int) -> int:
    """A torch seed for this rank's augmentation RNG from ``(seed, rank, iteration)``."""
    import numpy as np

    return int(np.random.SeedSequence([seed, rank(), iteration]).generate_state(1)[0])


class DataParallel:
    """What a training step does differently under ``torchrun``, in one place.

    In a single process every method is the identity (``loss_weight`` 1, no gathering, no
    collectives). Under DDP:

    * :meth:`wrap` puts the model in ``DistributedDataParallel`` (gradients averaged);
    * without ``gather_embeddings`` each rank's loss is weighted by ``world × its share of
      the global batch`` (:attr:`loss_weight`) so the averaged gradient is that of the mean
      loss over the global batch, and its statistics are averaged with the share as weight;
    * with ``gather_embeddings`` :meth:`gather` all-gathers the outputs so that every rank
      computes the global batch's loss (batch-hard mining over all ranks);
    * :meth:`sync_loss_gradients` averages the gradients of a loss's own parameters (they
      live outside DDP) when the ranks computed different losses;
    * :meth:`agree` turns per-rank flags (a signal, the budget) into one decision.

    Args:
        gather_embeddings: ``cfg.gather_embeddings``.
        find_unused_parameters: ``cfg.find_unused_parameters`` (passed to DDP).
        local_sizes: images per rank in every batch (the sampler's ``local_sizes``).
    """

    def __init__(self, gather_embeddings: bool, find_unused_parameters: bool,
                 local_sizes: Sequence[int]):
        self.on = is_distributed()
        self.sizes = list(local_sizes)
        self.gather_embeddings = gather_embeddings
        self.find_unused_parameters = find_unused_parameters
        self.loss_weight, self.stats_weight = 1.0, None
        if self.on and not gather_embeddings:
            self.stats_weight = self.sizes[rank()] / sum(self.sizes)
            self.loss_weight = world_size() * self.stats_weight

    def describe(self, device: torch.device, batch_k: int) -> None:
        """Log the data-parallel layout (and the single-identity warning) once."""
        if not self.on:
            return
        w = world_size()
        log.info("data-parallel on %d processes (%s): %s images per rank, gather embeddings: %s",
                 w, device.type, self.sizes, self.gather_embeddings)
        if not self.gather_embeddings and min(self.sizes) < 2 * batch_k:
            log.warning("some ranks hold a single identity of each P×K batch: a loss that mines "
                        "pairs inside the batch (batch-hard) needs --gather-embeddings or "
                        "--batch-p >= %d", 2 * w)

    def seed_rank(self, seed: int, iteration: int) -> None:
        """Under DDP: each rank's global RNG (dropout) from ``(seed, rank, iteration)``."""
        if self.on:
            torch.manual_seed(rank_seed(seed, iteration))

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``DistributedDataParallel(model)`` under DDP, else ``model``."""
        if not self.on:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=self.find_unused_parameters)

    def gather(self, outputs: Any, labels: torch.Tensor, targets: Mapping | None):
        """The global batch (with ``gather_embeddings``), else this rank's as given."""
        if self.on and self.gather_embeddings:
            return gather_batch(outputs, labels, targets, self.sizes)
        return outputs, labels, targets

    def reduce_stats(self, stats: Mapping[str, float]) -> dict[str, float]:
        """Statistics averaged over ranks (each weighted by its share); NaN when any is."""
        return average_floats(stats, self.stats_weight) if self.on else dict(stats)

    def sync_loss_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Average the gradients of parameters outside DDP when ranks had different losses."""
        if self.on and params and not self.gather_embeddings:
            average_gradients(params)

    def global_batch(self, local: int) -> int:
        """Images in the global batch (``local`` in a single process)."""
        return sum(self.sizes) if self.on else local

    def agree(self, values: Sequence[int]) -> list[int]:
        """The element-wise maximum of ``values`` over ranks (every rank decides alike)."""
        return max_ints(values)
