#!/usr/bin/env bash
# What helps in PSE, on the real Market-1501 holdout split at one budget: three networks trained
# exactly alike (MobileNetV2 ImageNet features, 128x64, P×K 16x4, identity softmax, cosine, the
# pose-maps stages: new layers, then all), two seeds each, every run evaluated without and with
# ECN re-ranking (one run gives both):
#   rgb-only   run pose-maps --no-pose-channels   (the same network and training, pose maps off)
#   pose-maps  run pose-maps                      (RGB + 14 pose maps)
#   pse        run pse                            (pose maps + view predictor + view units; its
#                                                  stage 1 trains the view predictor on keypoint
#                                                  pseudo-labels; reports held-out view accuracy)
# Each run has at most $MINUTES (default 15) minutes of training (2 CPU cores in the reference
# runs: 6 runs = 90 minutes). A finished run (report.json) is kept; an unfinished one resumes.
# Usage: benchmarks/pse_ablation_market1501_holdout.sh [VARIANT ...]   (default: all three)
#   env: SEEDS="0 1", MINUTES=15, EXP_ROOT=experiments,
#        RESULT=benchmarks/results/pse_ablation_market1501_holdout.json, SHARED=../shared
# Needs $SHARED/data/market1501-holdout (with keypoints.csv) and $SHARED/weights.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-0 1}
MINUTES=${MINUTES:-15}
EXP_ROOT=${EXP_ROOT:-experiments}
RESULT=${RESULT:-benchmarks/results/pse_ablation_market1501_holdout.json}
SHARED=${SHARED:-../shared}
VARIANTS=${*:-rgb-only pose-maps pse}
COMMON=(--dataset market1501-pose-maps --data "$SHARED/data/market1501-holdout"
        --backbone mobilenet_v2 --pretrained "$SHARED/weights/mobilenet_v2_imagenet_features.pth"
        --height 128 --width 64 --batch-p 16 --batch-k 4 --cache-images --workers 0
        --checkpoint-every 500 --log-every 50 --rerank ecn --no-tensorboard
        --iterations 1100 --decay-start-iteration 550 --max-train-minutes "$MINUTES")
RUNS=()
for VARIANT in $VARIANTS; do
  case "$VARIANT" in
    rgb-only)  RECIPE=(pose-maps --no-pose-channels) ;;
    pose-maps) RECIPE=(pose-maps) ;;
    pse)       RECIPE=(pse --view-iterations 100 --new-layers-iterations 200) ;;
    *) echo "unknown variant $VARIANT (rgb-only, pose-maps, pse)" >&2; exit 2 ;;
  esac
  for SEED in $SEEDS; do
    EXP=$EXP_ROOT/pse-ablation-$VARIANT-seed$SEED
    if [ -f "$EXP/report.json" ]; then
      echo "kept $EXP (report.json exists)"
    elif [ -f "$EXP/args.json" ]; then
      python -m reidcore run --resume --experiment "$EXP"
    else
      python -m reidcore run "${RECIPE[@]}" "${COMMON[@]}" --seed "$SEED" --experiment "$EXP"
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
    e = r.get("reranked", {})
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
