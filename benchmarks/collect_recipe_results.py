"""Collect the runs of benchmarks/recipes_market1501_holdout.sh into one JSON with mean and spread.

    python benchmarks/collect_recipe_results.py ROOT RESULT.json [--minutes M]

``ROOT`` holds one folder per run named ``RECIPE-seedN`` with a ``report.json`` (the
``run`` command's, or ``evaluate --output``'s for the plain reference) and ``command.txt``
(the command that trained it). For every recipe, and for the plain and the re-ranked
ranking (``report["reranked"]``, the re-ranker named there), the JSON holds each seed's
rank-1, mAP and mINP (fractions in [0, 1]) and their mean, sample standard deviation,
minimum and maximum, plus each run's training iterations and seconds, the schedule
``--fit-schedule-to-budget`` chose (``schedule``: iterations, timed seconds per iteration, the
re-fit if any; the last stage's for staged recipes) and each recipe's mAP relative to the
reference's mean (``mAP_vs_reference``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

from reidcore.atomic import atomic_write_json

METRICS = ("rank1", "mAP", "mINP")
RUN = re.compile(r"^(?P<recipe>.+)-seed(?P<seed>\d+)$")


def spread(values: list[float]) -> dict[str, float | None]:
    """Mean, sample standard deviation (None for one value), min and max."""
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values)}


def _last_schedule(folder: Path) -> dict | None:
    """The run's ``schedule.json``, or its last stage's (``stages/N-name/``), or None."""
    paths = [folder / "schedule.json"] + sorted(
        (folder / "stages").glob("*/schedule.json"),
        key=lambda q: int(q.parent.name.split("-", 1)[0]) if q.parent.name[0].isdigit() else -1)
    found = [q for q in paths if q.is_file()]
    return json.loads(found[-1].read_text()) if found else None


def read_runs(root: Path) -> dict[str, list[dict]]:
    """``{recipe: [run, ...]}`` of every ``RECIPE-seedN/report.json`` under ``root``.

    Raises:
        SystemExit: ``root`` is missing or holds no finished run.
    """
    if not root.is_dir():
        sys.exit(f"error: {root} does not exist")
    runs: dict[str, list[dict]] = {}
    for folder in sorted(root.iterdir()):
        m = RUN.match(folder.name)
        report_path = folder / "report.json"
        if m is None or not report_path.is_file():
            continue
        report = json.loads(report_path.read_text())
        command = folder / "command.txt"
        train = report.get("train") or {}
        run = {"seed": int(m["seed"]), "experiment": str(folder),
               "command": command.read_text().strip() if command.is_file() else None,
               "iterations": train.get("iteration"), "train_seconds": train.get("seconds"),
               "plain": {k: report.get(k) for k in METRICS}}
        reranked = report.get("reranked")
        if reranked:
            run["reranked"] = {k: reranked.get(k) for k in METRICS}
            run["reranker"] = reranked.get("reranker")
        schedule = _last_schedule(folder)
        if schedule:  # what --fit-schedule-to-budget chose (the last stage's, for staged runs)
            run["schedule"] = {"iterations": schedule["iterations"],
                               "seconds_per_iteration": schedule.get("seconds_per_iteration"),
                               "budget_fraction": schedule.get("budget_fraction"),
                               "refit": schedule.get("refit")}
        reference = folder / "reference.json"
        if reference.is_file():  # the plain script reports its own iterations and seconds
            result = json.loads(reference.read_text())["result"]
            run["iterations"], run["train_seconds"] = result["iterations"], result["train_seconds"]
        runs.setdefault(m["recipe"], []).append(run)
    if not runs:
        sys.exit(f"error: no RECIPE-seedN/report.json under {root}")
    return runs


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for recipe, rs in runs.items():
        entry: dict = {"runs": rs, "seeds": [r["seed"] for r in rs]}
        for ranking in ("plain", "reranked"):
            have = [r[ranking] for r in rs if ranking in r]
            if have:
                entry[ranking] = {k: spread([h[k] for h in have]) for k in METRICS
                                  if all(h.get(k) is not None for h in have)}
        rerankers = {r.get("reranker") for r in rs if r.get("reranker")}
        if rerankers:
            entry["reranker"] = ", ".join(sorted(rerankers))
        out[recipe] = entry
    ref = out.get("reference", {}).get("plain", {}).get("mAP")
    if ref and ref["mean"] > 0:
        for entry in out.values():
            if "mAP" in entry.get("plain", {}):
                entry["mAP_vs_reference"] = entry["plain"]["mAP"]["mean"] / ref["mean"]
    return out


#: row order of the markdown table (others follow, sorted)
ORDER = ("reference", "bot", "trinet", "dcnn", "rgb-only", "pose-maps", "pse", "san", "san-rec0")


def _cell(stat: dict | None) -> str:
    """``mean ± std`` in percent (``mean`` alone for one run), ``–`` when missing."""
    if not stat:
        return "–"
    text = f"{100 * stat['mean']:.1f}"
    return text + (f" ± {100 * stat['std']:.1f}" if stat.get("std") is not None else "")


def markdown_table(recipes: dict[str, dict]) -> str:
    """The README's results table: one row per recipe, mean ± sample std over its seeds
    (percent), each seed's iterations, the re-ranked figures and mAP relative to the
    reference's mean."""
    names = [n for n in ORDER if n in recipes] + sorted(set(recipes) - set(ORDER))
    lines = ["| recipe | seeds | iterations | rank-1 | mAP | mINP | re-ranked rank-1 | "
             "re-ranked mAP | re-ranker | mAP / reference |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        e = recipes[name]
        plain, rr = e.get("plain", {}), e.get("reranked", {})
        iters = ", ".join(str(r["iterations"]) for r in e["runs"])
        rel = e.get("mAP_vs_reference")
        lines.append(f"| {name} | {len(e['runs'])} | {iters} | {_cell(plain.get('rank1'))} | "
                     f"{_cell(plain.get('mAP'))} | {_cell(plain.get('mINP'))} | "
                     f"{_cell(rr.get('rank1'))} | {_cell(rr.get('mAP'))} | "
                     f"{e.get('reranker', '–')} | "
                     f"{'–' if rel is None else f'{100 * rel:.0f} %'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("result", type=Path)
    ap.add_argument("--minutes", type=float, help="the training budget every run had")
    ap.add_argument("--threads", type=int, help="torch/numba threads each run had")
    ap.add_argument("--lanes", type=int, help="how many runs shared the machine at once")
    ap.add_argument("--markdown", type=Path, help="also write the results table (markdown) here")
    args = ap.parse_args(argv)
    recipes = summarise(read_runs(args.root))
    record = {"script": "benchmarks/recipes_market1501_holdout.sh", "budget_minutes": args.minutes,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "threads_per_run": args.threads, "runs_at_once": args.lanes},
              "date": time.strftime("%Y-%m-%d"), "recipes": recipes}
    atomic_write_json(args.result, record)
    for name, entry in recipes.items():
        plain = entry.get("plain", {})
        line = "  ".join(f"{k} {100 * v['mean']:.1f}" + (f"±{100 * v['std']:.1f}" if v["std"] else "")
                         for k, v in plain.items())
        print(f"{name:10s} {line}")
    print("wrote", args.result)
    if args.markdown is not None:
        args.markdown.write_text(markdown_table(recipes))
        print("wrote", args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
