"""Benchmark: many small ``evaluate`` calls, alone and next to a CPU-busy process.

Each measurement runs in a fresh child process that builds a small problem (``--n-query``
x ``--n-gallery`` float32 distances, market1501 protocol), warms the kernel up and
times ``--calls`` calls of :func:`reidcore.evaluation.evaluate`. Two OpenMP settings:

* ``passive``: reidcore's default (importing reidcore sets ``OMP_WAIT_POLICY=PASSIVE``
  before torch loads libgomp; :mod:`reidcore.threads`);
* ``spin``: libgomp's default, as before (the child imports torch before reidcore
  with ``OMP_WAIT_POLICY`` unset, so idle OpenMP threads spin after each call).

Each alone, and next to one busy process (``while True: pass``) started by this
script. The machine is shared: the load averages are recorded beside the times, and
"alone" means without our busy process, not an idle machine.

    python benchmarks/bench_threads.py [--calls 1000]

Writes ``benchmarks/results/bench_threads.json`` (or ``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import os, sys, time
mode, n_q, n_g, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if mode == "spin":
    os.environ.pop("OMP_WAIT_POLICY", None)
    import torch  # libgomp loads with the default (spinning) policy
import numpy as np
import reidcore
from reidcore.evaluation import evaluate
from reidcore.threads import thread_settings
rng = np.random.default_rng(0)
d = rng.random((n_q, n_g)).astype(np.float32)
qp, gp = rng.integers(0, 10, n_q), rng.integers(0, 10, n_g)
qc, gc = rng.integers(0, 3, n_q), rng.integers(0, 3, n_g)
for _ in range(20):
    evaluate(d, qp, gp, qc, gc)
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(calls):
    evaluate(d, qp, gp, qc, gc)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
import json
print(json.dumps({"wall_s": wall, "process_cpu_s": cpu, "ms_per_call": 1e3 * wall / calls,
                  "settings": thread_settings()}))
"""


def run_child(mode: str, args) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    load = list(os.getloadavg())
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(args.n_query),
                          str(args.n_gallery), str(args.calls)], env=env, check=True,
                         capture_output=True, text=True).stdout
    rec = json.loads(out.strip().splitlines()[-1])
    rec["load_average_1_5_15_min_before"] = load
    return rec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--n-query", type=int, default=20)
    p.add_argument("--n-gallery", type=int, default=200)
    p.add_argument("--output", type=Path,
                   default=Path(__file__).parent / "results" / "bench_threads.json")
    args = p.parse_args()
    results: dict = {}
    for mode in ("passive", "spin"):
        alone = run_child(mode, args)
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(1.0)
            beside = run_child(mode, args)
        finally:
            busy.kill()
            busy.wait()
        results[mode] = {"alone": alone, "next_to_busy_process": beside,
                         "busy_over_alone": beside["wall_s"] / alone["wall_s"]}
        print(f"{mode}: {alone['ms_per_call']:.3f} ms/call alone, "
              f"{beside['ms_per_call']:.3f} ms/call next to a busy process "
              f"({results[mode]['busy_over_alone']:.2f}x; load "
              f"{beside['load_average_1_5_15_min_before'][0]:.1f})")
    from reidcore.atomic import atomic_write_json

    record = {"calls": args.calls, "n_query": args.n_query, "n_gallery": args.n_gallery,
              "cpu_count": os.cpu_count(), "results": results,
              "load_average_1_5_15_min_at_end": list(os.getloadavg())}
    atomic_write_json(args.output, record)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
