"""Triplet losses against brute-force loops (Hermans et al. 2017, Sec. 2, eq. 5 and 6)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from reid_trinet.losses import (
    BatchAllTripletLoss,
    BatchHardTripletLoss,
    cdist,
    parse_margin,
)

METRICS = ["euclidean", "sqeuclidean", "cityblock"]
MARGINS = ["soft", 0.2, 1.5]


def brute_dist(x: np.ndarray, y: np.ndarray, metric: str) -> float:
    d = x - y
    if metric == "euclidean":
        return math.sqrt(float((d * d).sum()) + 1e-12)
    if metric == "sqeuclidean":
        return float((d * d).sum())
    return float(np.abs(d).sum())


def brute_margin(diff: float, margin) -> float:
    if margin == "soft":
        return math.log1p(math.exp(diff))
    return max(0.0, margin + diff)


def brute_batch_hard(emb: np.ndarray, pids: np.ndarray, margin, metric: str) -> float:
    losses = []
    for a in range(len(emb)):
        pos = [
            brute_dist(emb[a], emb[p], metric)
            for p in range(len(emb))
            if p != a and pids[p] == pids[a]
        ]
        neg = [brute_dist(emb[a], emb[n], metric) for n in range(len(emb)) if pids[n] != pids[a]]
        if pos and neg:
            losses.append(brute_margin(max(pos) - min(neg), margin))
    return sum(losses) / len(losses)


def brute_batch_all(emb: np.ndarray, pids: np.ndarray, margin, metric: str, average: str):
    losses = []
    for a, p, n in itertools.product(range(len(emb)), repeat=3):
        if p != a and pids[p] == pids[a] and pids[n] != pids[a]:
            diff = brute_dist(emb[a], emb[p], metric) - brute_dist(emb[a], emb[n], metric)
            losses.append(brute_margin(diff, margin))
    if average == "all":
        return sum(losses) / len(losses)
    active = [v for v in losses if v > 0]
    return sum(active) / len(active) if active else 0.0


def random_batch(seed: int, p: int = 4, k: int = 3, dim: int = 8, scale: float = 0.5):
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randn(p * k, dim, generator=gen, dtype=torch.float64) * scale
    pids = torch.arange(p).repeat_interleave(k)[torch.randperm(p * k, generator=gen)]
    return emb, pids


@pytest.mark.parametrize("metric", METRICS)
def test_cdist_matches_brute_force(metric):
    a = torch.randn(5, 7, dtype=torch.float64)
    b = torch.randn(4, 7, dtype=torch.float64)
    d = cdist(a, b, metric)
    assert d.shape == (5, 4) and d.dtype == torch.float32
    expected = [[brute_dist(x, y, metric) for y in b.numpy()] for x in a.numpy()]
    np.testing.assert_allclose(d.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_cdist_rejects_bad_input():
    with pytest.raises(ValueError, match="metric"):
        cdist(torch.zeros(2, 3), torch.zeros(2, 3), "cosine")
    with pytest.raises(ValueError, match="same width"):
        cdist(torch.zeros(2, 3), torch.zeros(2, 4))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_hard_matches_brute_force(metric, margin, seed):
    emb, pids = random_batch(seed)
    loss_fn = BatchHardTripletLoss(margin=margin, metric=metric)
    loss = loss_fn({"embedding": emb.float()}, pids)
    assert loss.shape == () and loss.dtype == torch.float32
    expected = brute_batch_hard(emb.float().double().numpy(), pids.numpy(), margin, metric)
    assert loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert set(loss_fn.last_stats) == {"active_fraction", "mean_pos", "mean_neg"}
    assert all(isinstance(v, float) for v in loss_fn.last_stats.values())
    assert 0.0 <= loss_fn.last_stats["active_fraction"] <= 1.0


def test_batch_hard_skips_anchors_without_positive():
    emb, _ = random_batch(3, p=3, k=3)
    pids = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 5])  # pid 5 appears once
    got = BatchHardTripletLoss(margin=0.3)({"embedding": emb.float()}, pids).item()
    expected = brute_batch_hard(emb.float().double().numpy(), pids.numpy(), 0.3, "euclidean")
    assert got == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("metric", ["euclidean", "cityblock"])
@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("average", ["active", "all"])
def test_batch_all_matches_brute_force(metric, margin, average):
    emb, pids = random_batch(7, p=3, k=3)
    loss_fn = BatchAllTripletLoss(margin=margin, metric=metric, average=average)
    loss = loss_fn({"embedding": emb.float()}, pids)
    expected = brute_batch_all(emb.float().double().numpy(), pids.numpy(), margin, metric, average)
    assert loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert 0.0 <= loss_fn.last_stats["active_fraction"] <= 1.0


def test_batch_all_active_average_differs_from_all_and_is_zero_when_none_active():
    emb, pids = random_batch(2, p=3, k=3, scale=0.3)
    out = {"embedding": emb.float()}
    active = BatchAllTripletLoss(margin=0.2, average="active")(out, pids).item()
    every = BatchAllTripletLoss(margin=0.2, average="all")(out, pids).item()
    assert active >= every > 0
    # identities far apart: no triplet violates the margin
    separated = torch.cat([torch.full((3, 4), 10.0 * i) for i in range(3)])
    pids = torch.arange(3).repeat_interleave(3)
    loss_fn = BatchAllTripletLoss(margin=0.2)
    emb = separated.requires_grad_()
    loss = loss_fn({"embedding": emb}, pids)
    assert loss.item() == 0.0 and loss_fn.last_stats["active_fraction"] == 0.0
    loss.backward()
    assert torch.isfinite(emb.grad).all()


@pytest.mark.parametrize("loss_cls", [BatchHardTripletLoss, BatchAllTripletLoss])
@pytest.mark.parametrize("metric", METRICS)
def test_gradient_finite_when_embeddings_coincide(loss_cls, metric):
    emb = torch.randn(6, 4)
    emb[1] = emb[0]  # an anchor and its positive coincide: distance 0
    emb[3] = emb[2]
    emb = emb.requires_grad_()
    pids = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = loss_cls(margin="soft", metric=metric)({"embedding": emb}, pids)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()
    same = torch.zeros(4, 3, requires_grad=True)  # every embedding at the origin
    loss = loss_cls(margin=0.5, metric=metric)({"embedding": same}, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(same.grad).all()


@pytest.mark.parametrize("loss_cls", [BatchHardTripletLoss, BatchAllTripletLoss])
def test_fp16_embeddings_give_finite_float32_loss(loss_cls):
    emb, pids = random_batch(4, scale=200.0)  # squares overflow fp16 (max 65504)
    half = emb.half().requires_grad_()
    loss = loss_cls(margin="soft")({"embedding": half}, pids)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert half.grad.dtype == torch.float16 and torch.isfinite(half.grad).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss_bf16 = loss_cls(margin="soft")({"embedding": emb.float()}, pids)
    assert loss_bf16.dtype == torch.float32 and torch.isfinite(loss_bf16)


def test_hardest_pair_gets_the_gradient():
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.5, 0.0]], requires_grad=True)
    pids = torch.tensor([0, 0, 0, 1])
    loss_fn = BatchHardTripletLoss(margin=1.0)
    loss = loss_fn({"embedding": emb}, pids)
    # anchor 0: d_pos = 3 (image 2), d_neg = 0.5 -> 3.5 ; anchor 1: 2 vs 0.5 -> 2.5 ;
    # anchor 2: 3 vs 2.5 -> 1.5 ; anchor 3 has no positive: left out
    assert loss.item() == pytest.approx((3.5 + 2.5 + 1.5) / 3, rel=1e-5)
    assert loss_fn.last_stats["mean_pos"] == pytest.approx((3 + 2 + 3) / 3, rel=1e-5)
    assert loss_fn.last_stats["mean_neg"] == pytest.approx((0.5 + 0.5 + 2.5) / 3, rel=1e-5)
    assert loss_fn.last_stats["active_fraction"] == 1.0


@pytest.mark.parametrize("loss_cls", [BatchHardTripletLoss, BatchAllTripletLoss])
def test_batch_without_positive_or_negative_raises(loss_cls):
    with pytest.raises(ValueError, match="no positive pair"):
        loss_cls()({"embedding": torch.randn(4, 3)}, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="no negative pair"):
        loss_cls()({"embedding": torch.randn(4, 3)}, torch.tensor([7, 7, 7, 7]))
    with pytest.raises(ValueError, match="pids"):
        loss_cls()({"embedding": torch.randn(4, 3)}, torch.tensor([0, 0, 1]))
    with pytest.raises(KeyError, match="embedding"):
        loss_cls()({"logits": torch.randn(4, 3)}, torch.tensor([0, 0, 1, 1]))


def test_margin_parsing_and_bad_arguments():
    assert parse_margin("soft") == "soft" and parse_margin("SOFT") == "soft"
    assert parse_margin("0.2") == 0.2 and parse_margin(1) == 1.0
    for bad in ("hard", -0.1, "-1", "nan", True, None):
        with pytest.raises(ValueError, match="margin"):
            parse_margin(bad)
    assert BatchHardTripletLoss(margin="0.3").margin == 0.3
    with pytest.raises(ValueError, match="metric"):
        BatchHardTripletLoss(metric="cosine")
    with pytest.raises(ValueError, match="average"):
        BatchAllTripletLoss(average="nonzero")
