#!/usr/bin/env bash
# TriNet (MobileNetV2, ImageNet features) on the real Market-1501 holdout split, 128×64 input,
# at most 15 minutes of training on 2 CPU cores. Writes the experiment to $EXP (default
# experiments/trinet-market1501-holdout) and copies its report to benchmarks/results/.
# Needs ../shared/data/market1501-holdout and ../shared/weights (see ../shared/data/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
EXP=${EXP:-experiments/trinet-market1501-holdout}
CMD=(python -m reidcore run trinet --dataset market1501 --data ../shared/data/market1501-holdout
     --backbone mobilenet_v2 --pretrained ../shared/weights/mobilenet_v2_imagenet_features.pth
     --height 128 --width 64 --batch-p 16 --batch-k 4 --iterations 1500 --decay-start-iteration 700
     --cache-images --workers 0 --max-train-minutes 15 --checkpoint-every 500 --log-every 50
     --eval-untrained --experiment "$EXP")
"${CMD[@]}"
python - "$EXP" "${CMD[*]}" <<'PY'
import json, platform, os, sys
exp, cmd = sys.argv[1], sys.argv[2]
report = json.load(open(os.path.join(exp, "report.json")))
out = {"command": cmd, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
       "report": report}
path = "benchmarks/results/trinet_market1501_holdout.json"
with open(path + ".tmp", "w") as f:
    json.dump(out, f, indent=2)
os.replace(path + ".tmp", path)
print("wrote", path)
PY
