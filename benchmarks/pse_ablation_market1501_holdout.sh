#!/usr/bin/env bash
# What helps in PSE, on the real Market-1501 holdout split at one budget: three networks trained
# exactly alike (MobileNetV2 ImageNet features, 128x64, P×K 16x4, identity softmax, cosine, the
# pose-maps stages: new layers, then all; the schedule fitted to the budget), two seeds each,
# every run evaluated without and with ECN re-ranking:
#   rgb-only   run pose-maps --no-pose-channels   (the same network and training, pose maps off)
#   pose-maps  run pose-maps                      (RGB + 14 pose maps)
#   pse        run pse                            (pose maps + view predictor + view units; its
#                                                  stage 1 trains the view predictor on keypoint
#                                                  pseudo-labels; reports held-out view accuracy)
# The runs are those of benchmarks/recipes_market1501_holdout.sh (the same folders, made by it
# when missing: RECIPES="rgb-only pose-maps pse"); rgb-only and pose-maps, trained with
# k-reciprocal there, are evaluated again with ECN (report-ecn.json beside report.json).
# Usage: benchmarks/pse_ablation_market1501_holdout.sh
#   env: as the recipes script (SEEDS="0 1", MINUTES=15, LANES, EXP_ROOT),
#        RESULT=benchmarks/results/pse_ablation_market1501_holdout.json
# Needs ../shared/data/market1501-holdout (with keypoints.csv) and ../shared/weights.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-0 1}
MINUTES=${MINUTES:-15}
ROOT=${EXP_ROOT:-experiments/recipes-market1501-holdout}
RESULT=${RESULT:-benchmarks/results/pse_ablation_market1501_holdout.json}
SEEDS="$SEEDS" MINUTES="$MINUTES" EXP_ROOT="$ROOT" RECIPES="rgb-only pose-maps pse" \
  RESULT="$ROOT/pse-ablation-recipes.json" benchmarks/recipes_market1501_holdout.sh
RUNS=()
for VARIANT in rgb-only pose-maps pse; do
  for SEED in $SEEDS; do
    EXP=$ROOT/$VARIANT-seed$SEED
    [ -f "$EXP/report.json" ] || { echo "missing $EXP/report.json" >&2; exit 1; }
    if [ "$VARIANT" != pse ] && [ ! -f "$EXP/report-ecn.json" ]; then
      python -m reidcore evaluate --experiment "$EXP" --rerank ecn --output "$EXP/report-ecn.json"
    fi
    RUNS+=("$VARIANT=$SEED=$EXP")
  done
done
python - "$RESULT" "$MINUTES" "${RUNS[@]}" <<'PY'
import json, os, platform, statistics, sys, time

from reidcore.atomic import atomic_write_json

result, minutes, runs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
out = {"script": "benchmarks/pse_ablation_market1501_holdout.sh",
       "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
       "date": time.strftime("%Y-%m-%d"), "budget_minutes_per_run": minutes,
       "runs": {}, "summary": {}, "differences": {}}
for run in runs:
    variant, seed, exp = run.split("=", 2)
    r = json.load(open(os.path.join(exp, "report.json")))
    ecn = os.path.join(exp, "report-ecn.json")  # rgb-only and pose-maps: ECN evaluated apart
    e = (json.load(open(ecn)) if os.path.exists(ecn) else r).get("reranked", {})
    args = json.load(open(os.path.join(exp, "args.json")))
    row = {"experiment": exp, "recipe": args["recipe"], "seed": args["config"]["seed"],
           "pose_channels": args["config"].get("pose_channels"),
           "max_train_minutes": args["config"].get("max_train_minutes"),
           "rank1": r["rank1"], "mAP": r["mAP"], "mINP": r["mINP"],
           "ecn_rank1": e.get("rank1"), "ecn_mAP": e.get("mAP"), "ecn_mINP": e.get("mINP"),
           "reranker": e.get("reranker"), "iterations": r["train"]["iteration"],
           "train_seconds": r["train"]["seconds"],
           "stages": [(s["stage"], s["iteration"], s["stopped"]) for s in r.get("stages", [])],
           "view_accuracy": (r.get("views") or {}).get("accuracy")}
    out["runs"].setdefault(variant, {})[seed] = row
keys = ("rank1", "mAP", "mINP", "ecn_rank1", "ecn_mAP", "ecn_mINP", "view_accuracy")
for variant, by_seed in out["runs"].items():
    out["summary"][variant] = {}
    for k in keys:
        values = [row[k] for row in by_seed.values() if row[k] is not None]
        if values:
            out["summary"][variant][k] = {"mean": statistics.fmean(values), "values": values,
                                          "spread": max(values) - min(values)}
for a, b in (("pose-maps", "rgb-only"), ("pse", "pose-maps"), ("pse", "rgb-only")):
    if a in out["runs"] and b in out["runs"]:
        seeds = sorted(set(out["runs"][a]) & set(out["runs"][b]))
        out["differences"][f"{a} - {b}"] = {
            k: {"per_seed": {s: out["runs"][a][s][k] - out["runs"][b][s][k] for s in seeds
                             if out["runs"][a][s][k] is not None
                             and out["runs"][b][s][k] is not None},
                "mean": out["summary"][a][k]["mean"] - out["summary"][b][k]["mean"]}
            for k in keys[:6] if k in out["summary"][a] and k in out["summary"][b]}
atomic_write_json(result, out)
print(f"{'variant':>10} | {'rank-1':>15} | {'mAP':>15} | {'ECN rank-1':>15} | {'ECN mAP':>15}")
for variant, s in out["summary"].items():
    cells = [f"{100 * s[k]['mean']:5.1f} ({', '.join(f'{100 * v:.1f}' for v in s[k]['values'])})"
             if k in s else "n/a" for k in ("rank1", "mAP", "ecn_rank1", "ecn_mAP")]
    print(f"{variant:>10} | " + " | ".join(f"{c:>15}" for c in cells))
print("wrote", result)
PY
