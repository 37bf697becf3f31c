"""Kill and resume: 20 random SIGTERM/SIGKILL points over one tiny training run, all resumed.

Issue 14 ("must show" 2). A reference run trains without interruption; a second run with the
same flags is killed 20 times at random points (after a random number of iterations plus a
random fraction of a second, so some SIGKILLs land in a checkpoint write) and each time
resumed with ``train --resume``. The script reports:

- ``max_abs_weight_difference``: max |w_ref - w_resumed| over the final model's tensors
  (must be 0: exact resume);
- ``checkpoints_lost``: kills after which the newest readable checkpoint was older than the
  newest one on disk before the kill, or unreadable (must be 0: atomic writes);
- ``temp_files_left``: ``.*.tmp`` files in the experiment folder once the run completed (must
  be 0: temp files of killed writes are removed at the next start);
- ``resume_mismatches``: resumes that did not continue from the newest checkpoint.

Defaults: trinet on the ``synthetic`` dataset (generated on first use), resnet18,
``--pretrained none``, 64×32, P×K 4×4, 60 iterations, a checkpoint every 3 (kill
iterations: 20 distinct ones drawn from 1..59, each process killed once it logs the next).

    nice -n 10 python benchmarks/kill_resume.py                    # writes the JSON below
    python benchmarks/kill_resume.py --kills 5 --iterations 30     # quicker

Results: benchmarks/results/kill_resume.json (with the machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from reidcore.atomic import atomic_write_json, is_temp_file
from reidcore.engine.checkpoint import list_checkpoints

RESUMED = re.compile(r"resumed from iteration (\d+)")


def train_flags(args: argparse.Namespace, data: Path) -> list[str]:
    return ["trinet", "--dataset", "synthetic", "--data", str(data), "--backbone", "resnet18",
            "--pretrained", "none", "--height", "64", "--width", "32", "--batch-p", "4",
            "--batch-k", "4", "--lr", "1e-3", "--iterations", str(args.iterations),
            "--decay-start-iteration", str(args.iterations // 2), "--checkpoint-every",
            str(args.checkpoint_every), "--log-every", "1", "--workers", str(args.workers),
            "--no-tensorboard", "--no-progress", "--seed", str(args.seed)]


def command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "reidcore", *argv]


def newest(exp: Path) -> int:
    found = list_checkpoints(exp)
    return found[-1][0] if found else 0


def readable(path: Path) -> bool:
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception:  # noqa: BLE001 - any failure to read counts as lost
        return False


def temp_files(exp: Path) -> list[str]:
    return sorted(str(p.relative_to(exp)) for p in exp.rglob("*") if is_temp_file(p))


ITER = re.compile(r" iter (\d+)/")


def run_and_kill(cmd: list[str], sig: int, at_iteration: int, delay: float, exp: Path) -> dict:
    """Start ``cmd``, send ``sig`` ``delay`` s after it logs iteration ``at_iteration`` (or later)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines, sent, before = [], False, None
    for line in proc.stdout:
        lines.append(line)
        if (m := ITER.search(line)) and int(m.group(1)) >= at_iteration:
            time.sleep(delay)
            before = newest(exp)
            proc.send_signal(sig)
            sent = True
            break
    rest, _ = proc.communicate(timeout=600)
    text = "".join(lines) + rest
    return {"sent": sent, "returncode": proc.returncode, "newest_before": before, "log": text}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--checkpoint-every", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None,
                        help="synthetic dataset cache folder (default: a temporary one)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "kill_resume.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    data = args.data or work / "cache"
    t0 = time.monotonic()
    ref, exp = work / "reference", work / "killed"
    done = subprocess.run(command("train", *train_flags(args, data), "--experiment", str(ref)),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the reference run failed:\n{done.stdout}{done.stderr}")
    events, lost, mismatches, previous_newest = [], 0, 0, 0
    cmd = command("train", *train_flags(args, data), "--experiment", str(exp))
    points = sorted(rng.sample(range(1, args.iterations), args.kills))  # kill iterations
    for k, at in enumerate(points):
        sig = rng.choice([signal.SIGTERM, signal.SIGKILL])
        delay = rng.uniform(0.0, 0.5)
        r = run_and_kill(cmd, sig, at, delay, exp)
        if not r["sent"]:  # the run finished before the kill point
            events.append({"kill": k, "signal": sig.name, "sent": False})
            break
        found = list_checkpoints(exp)
        after_kill = found[-1][0] if found else 0
        ok = (after_kill >= (r["newest_before"] or 0)) and (not found or readable(found[-1][1]))
        lost += not ok
        if k > 0 and (m := RESUMED.search(r["log"])) and int(m.group(1)) != previous_newest:
            mismatches += 1  # this start did not continue from the newest checkpoint
        previous_newest = after_kill
        events.append({"kill": k, "signal": sig.name, "at_iteration": at,
                       "delay_s": round(delay, 3), "returncode": r["returncode"],
                       "newest_checkpoint_before": r["newest_before"],
                       "newest_checkpoint_after": after_kill, "intact": ok,
                       "temp_files_after_kill": len(temp_files(exp))})
        print(f"kill {k + 1}/{args.kills}: {sig.name} rc {r['returncode']}, checkpoint "
              f"{r['newest_before']} -> {after_kill}, temp files {len(temp_files(exp))}",
              flush=True)
        cmd = command("train", "--resume", "--experiment", str(exp))
    final = subprocess.run(cmd, capture_output=True, text=True)
    if final.returncode != 0:
        raise SystemExit(f"the last resume failed:\n{final.stdout}{final.stderr}")
    if (m := RESUMED.search(final.stdout + final.stderr)) and int(m.group(1)) != previous_newest:
        mismatches += 1
    a = torch.load(list_checkpoints(ref)[-1][1], map_location="cpu", weights_only=True)["model"]
    b = torch.load(list_checkpoints(exp)[-1][1], map_location="cpu", weights_only=True)["model"]
    diff = max(float((a[key].double() - b[key].double()).abs().max()) if a[key].numel() else 0.0
               for key in a)
    result = {
        "benchmark": "kill_resume",
        "command": " ".join(["train", *train_flags(args, Path("DATA"))]),
        "kills": len([e for e in events if e.get("sent", True)]),
        "sigterm": sum(e["signal"] == "SIGTERM" for e in events),
        "sigkill": sum(e["signal"] == "SIGKILL" for e in events),
        "max_abs_weight_difference": diff,
        "identical_tensors": sum(torch.equal(a[key], b[key]) for key in a), "tensors": len(a),
        "checkpoints_lost": lost, "resume_mismatches": mismatches,
        "temp_files_left": len(temp_files(exp)),
        "temp_files_seen_after_kills": sum(e.get("temp_files_after_kill", 0) > 0 for e in events),
        "final_iteration": list_checkpoints(exp)[-1][0], "seconds": round(time.monotonic() - t0, 1),
        "events": events,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__},
    }
    atomic_write_json(args.out, result)
    summary = {k: result[k] for k in ("kills", "max_abs_weight_difference", "checkpoints_lost",
                                      "temp_files_left", "resume_mismatches")}
    print(summary)
    ok = diff == 0 and lost == 0 and result["temp_files_left"] == 0 and mismatches == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
