#!/usr/bin/env bash
# PSE (pose maps + view predictor from keypoint pseudo-labels, staged training) and the pose-maps
# baseline on the real Market-1501 holdout split, MobileNetV2 (ImageNet features), 128x64 input,
# each with the budget of benchmarks/trinet_market1501_holdout.sh (at most 15 minutes of training
# on 2 CPU cores); evaluated without and with ECN
# re-ranking (rank-list distance; the original-distance variant from the saved embeddings).
# Usage: benchmarks/pse_market1501_holdout.sh [pse|pose-maps]   (default: both)
# Writes experiments/<recipe>-market1501-holdout and benchmarks/results/<recipe>_market1501_holdout.json.
# Needs ../shared/data/market1501-holdout (with keypoints.csv) and ../shared/weights.
set -euo pipefail
cd "$(dirname "$0")/.."
COMMON=(--dataset market1501-pose-maps --data ../shared/data/market1501-holdout
        --backbone mobilenet_v2 --pretrained ../shared/weights/mobilenet_v2_imagenet_features.pth
        --height 128 --width 64 --batch-p 16 --batch-k 4 --cache-images --workers 0
        --checkpoint-every 500 --log-every 50 --rerank ecn --no-tensorboard)
for RECIPE in ${1:-pse pose-maps}; do
  EXP=${EXP_ROOT:-experiments}/$RECIPE-market1501-holdout
  if [ "$RECIPE" = pse ]; then
    EXTRA=(--view-iterations 100 --new-layers-iterations 200 --iterations 1100
           --decay-start-iteration 550 --max-train-minutes 15)
  else
    EXTRA=(--iterations 1100 --decay-start-iteration 550 --max-train-minutes 15)
  fi
  CMD=(python -m reidcore run "$RECIPE" "${COMMON[@]}" "${EXTRA[@]}" --experiment "$EXP")
  if [ -f "$EXP/args.json" ]; then python -m reidcore run --resume --experiment "$EXP"; else "${CMD[@]}"; fi
  python -m reidcore evaluate --experiment "$EXP" \
    --metric cosine --rerank ecn-orig --output "$EXP/ecn_orig.json"
  python - "$EXP" "$RECIPE" "${CMD[*]}" <<'PY'
import json, os, platform, sys, time
exp, recipe, cmd = sys.argv[1:4]
report = json.load(open(os.path.join(exp, "report.json")))
orig = json.load(open(os.path.join(exp, "ecn_orig.json")))
out = {"command": cmd, "script": "benchmarks/pse_market1501_holdout.sh",
       "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
       "date": time.strftime("%Y-%m-%d"), "report": report,
       "ecn_orig": orig.get("reranked", orig)}
path = f"benchmarks/results/{recipe.replace('-', '_')}_market1501_holdout.json"
with open(path + ".tmp", "w") as f:
    json.dump(out, f, indent=2)
os.replace(path + ".tmp", path)
print("wrote", path)
PY
done
