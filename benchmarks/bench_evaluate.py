"""Benchmark: reidcore's numba evaluator against a plain NumPy per-query reference.

A Market-1501-sized synthetic problem: 3,368 queries x 15,913 gallery images,
751 identities over 6 cameras, plus distractors (pid 0) and junk (pid -1) in the
gallery as in Market-1501's test set; float32 Euclidean distances of noisy identity
centres. Times CMC + mAP (step and trapezoid) + mINP under the market1501 protocol.

The NumPy reference (one stable argsort per query row, as torchreid's/fast-reid's
Python evaluators do) is timed on ``--ref-queries`` queries and extrapolated linearly
to all queries; the output says so. The kernel is warmed up first (numba compilation,
or loading numba's on-disk cache) and that time is reported separately.

    python benchmarks/bench_evaluate.py [--ref-queries 400] [--repeats 5]

Writes ``benchmarks/results/bench_evaluate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
import tracemalloc
from pathlib import Path

import numba
import numpy as np
import torch
from proc_memory import status_mib

from reidcore.evaluation import evaluate, pairwise_distances

N_QUERY, N_GALLERY, N_IDS, N_CAMS = 3368, 15913, 751, 6
N_DISTRACTORS, N_JUNK = 2793, 3819  # Market-1501's bounding_box_test: pid 0 and pid -1


def make_problem(seed: int = 0, dim: int = 128):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(N_IDS + 1, dim)).astype(np.float32)
    q_pids = np.concatenate([np.arange(1, N_IDS + 1), rng.integers(1, N_IDS + 1,
                                                                  N_QUERY - N_IDS)])
    n_true = N_GALLERY - N_DISTRACTORS - N_JUNK
    g_pids = np.concatenate([np.arange(1, N_IDS + 1), rng.integers(1, N_IDS + 1, n_true - N_IDS),
                             np.zeros(N_DISTRACTORS, int), -np.ones(N_JUNK, int)])
    q_cams = rng.integers(1, N_CAMS + 1, N_QUERY)
    g_cams = rng.integers(1, N_CAMS + 1, N_GALLERY)
    noise = 1.6  # a mediocre model: many negatives before the last match
    q = centres[q_pids] + noise * rng.normal(size=(N_QUERY, dim)).astype(np.float32)
    g = np.where((g_pids > 0)[:, None], centres[np.maximum(g_pids, 0)], 0.0).astype(np.float32)
    g += noise * rng.normal(size=(N_GALLERY, dim)).astype(np.float32)
    g[g_pids <= 0] *= 1.2
    dist = pairwise_distances(q, g)
    return dist, q_pids, g_pids, q_cams, g_cams


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def numpy_reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50):
    """Plain per-query NumPy: stable argsort, market1501 exclusion, CMC/AP/INP sums."""
    cmc = np.zeros(max_rank)
    ap_sum = trap_sum = inp_sum = 0.0
    valid = 0
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")
        gp, gc = g_pids[order], g_cams[order]
        keep = (gp != -1) & ~((gp == q_pids[i]) & (gc == q_cams[i]))
        good = gp[keep] == q_pids[i]
        hits = np.flatnonzero(good)
        if hits.size == 0:
            continue
        valid += 1
        if hits[0] < max_rank:
            cmc[hits[0]:] += 1
        k = np.arange(1, hits.size + 1)
        prec = k / (hits + 1.0)
        prev = np.where(hits > 0, (k - 1) / np.maximum(hits, 1), 1.0)
        ap_sum += prec.mean()
        trap_sum += ((prev + prec) / 2).mean()
        inp_sum += hits.size / (hits[-1] + 1.0)
    return cmc, ap_sum, trap_sum, inp_sum, valid


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ref-queries", type=int, default=400,
                   help="queries the NumPy reference is timed on (extrapolated to all)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of the kernel (best kept)")
    p.add_argument("--output", type=Path,
                   default=Path(__file__).parent / "results" / "bench_evaluate.json")
    args = p.parse_args()

    t0 = time.perf_counter()
    dist, q_pids, g_pids, q_cams, g_cams = make_problem()
    t_data = time.perf_counter() - t0
    print(f"problem: {dist.shape[0]} x {dist.shape[1]} float32, {N_IDS} ids, {N_CAMS} cams, "
          f"{N_DISTRACTORS} distractors, {N_JUNK} junk (built in {t_data:.1f} s)")

    # warm-up: numba compilation or cache load, on a tiny problem
    t0 = time.perf_counter()
    evaluate(dist[:4, :50], q_pids[:4], g_pids[:50], q_cams[:4], g_cams[:50], excluder="none")
    t_compile = time.perf_counter() - t0
    print(f"numba warm-up (compile or cache load): {t_compile:.2f} s")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cur_before = status_mib("VmRSS")
    reset_ok = _reset_peak_rss()
    times = []
    result = None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = evaluate(dist, q_pids, g_pids, q_cams, g_cams, excluder="market1501")
        times.append(time.perf_counter() - t0)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hwm = status_mib("VmHWM") if reset_ok else None
    extra = (hwm - cur_before) if hwm is not None and cur_before is not None else None
    tracemalloc.start()
    evaluate(dist, q_pids, g_pids, q_cams, g_cams, excluder="market1501")
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t_kernel = min(times)
    print(f"reidcore evaluate (numba, {numba.get_num_threads()} threads): best {t_kernel:.3f} s, "
          f"median {float(np.median(times)):.3f} s over {args.repeats} runs "
          f"(CMC + step mAP + trapezoid mAP + mINP)")
    print(f"  rank-1 {100 * result.rank(1):.2f}%  mAP {100 * result.mAP:.2f}%  "
          f"mAP(trapezoid) {100 * result.mAP_trapezoid:.2f}%  mINP {100 * result.mINP:.2f}%")

    n_ref = min(args.ref_queries, len(q_pids))
    t0 = time.perf_counter()
    ref = numpy_reference(dist[:n_ref], q_pids[:n_ref], g_pids, q_cams[:n_ref], g_cams)
    t_ref_sub = time.perf_counter() - t0
    t_ref = t_ref_sub * len(q_pids) / n_ref
    sub = evaluate(dist[:n_ref], q_pids[:n_ref], g_pids, q_cams[:n_ref], g_cams)
    cmc, ap_sum, trap_sum, inp_sum, valid = ref
    max_diff = max(float(np.abs(sub.cmc - cmc / valid).max()),
                   abs(sub.mAP_step - ap_sum / valid), abs(sub.mAP_trapezoid - trap_sum / valid),
                   abs(sub.mINP - inp_sum / valid))
    print(f"NumPy per-query reference: {t_ref_sub:.2f} s on the first {n_ref} queries, "
          f"EXTRAPOLATED to {len(q_pids)} queries: {t_ref:.2f} s")
    print(f"speed ratio (reference / reidcore): {t_ref / t_kernel:.1f}x; max |difference| "
          f"of CMC/mAP/mINP on the subset: {max_diff:.2e}")
    print(f"peak memory: process max RSS {rss_before:.0f} MiB before the timed runs, "
          f"{rss_after:.0f} MiB after (distance matrix: {dist.nbytes / 2**20:.0f} MiB); "
          f"Python-side allocations (tracemalloc) peak {py_peak / 2**20:.1f} MiB")
    if extra is not None:
        print(f"peak RSS during the timed evaluate() calls: {hwm:.0f} MiB, "
              f"{extra:.0f} MiB above the RSS before them (VmHWM reset via /proc/self/clear_refs)")

    out = {
        "problem": {"n_query": int(dist.shape[0]), "n_gallery": int(dist.shape[1]),
                    "n_ids": N_IDS, "n_cams": N_CAMS, "distractors": N_DISTRACTORS,
                    "junk": N_JUNK, "dtype": str(dist.dtype)},
        "numba_threads": int(numba.get_num_threads()),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "load_average_1_5_15_min_at_end": list(os.getloadavg()),
        "compile_or_cache_load_s": t_compile,
        "kernel_s_best": t_kernel,
        "kernel_s_all": times,
        "reference_s_subset": t_ref_sub,
        "reference_subset_queries": n_ref,
        "reference_s_extrapolated": t_ref,
        "reference_extrapolated": n_ref < len(q_pids),
        "speed_ratio": t_ref / t_kernel,
        "max_abs_difference_on_subset": max_diff,
        "max_rss_mib_before": rss_before,
        "max_rss_mib_after": rss_after,
        "tracemalloc_peak_mib": py_peak / 2**20,
        "rss_mib_before_evaluate": cur_before,
        "peak_rss_mib_during_evaluate": hwm,
        "extra_peak_rss_mib_of_evaluate": extra,
        "metrics": result.to_dict(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
