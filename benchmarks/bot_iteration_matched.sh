#!/usr/bin/env bash
# `bot` at the plain reference's iteration counts: does the library's step learn as much as the
# reference script's? benchmarks/recipes_market1501_holdout.sh compares them at one time budget,
# where the iteration counts differ (the fitted plan, the neighbour run's load); here each seed's
# bot run trains exactly the iterations the reference's run of that seed trained (its
# reference.json), on the schedule the reference lays over its budget: warm-up over N/12
# iterations from 0.1 × lr, ×0.1 at N/3 and 7N/12 (the paper's epochs 10, 40 and 70 of 120),
# no time budget. Same data, backbone, input and flags otherwise.
#
#   benchmarks/bot_iteration_matched.sh            # seeds 0 1 2, two runs at a time
#
# Needs the reference runs of benchmarks/recipes_market1501_holdout.sh (SRC). Writes
# benchmarks/results/bot_iteration_matched.json (and .md) with benchmarks/collect_recipe_results.py;
# the reference runs are linked into EXP_ROOT so that the table has both.
# Environment: DATA, WEIGHTS, SRC, EXP_ROOT, SEEDS ("0 1 2"), LANES (2), RESULT.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/market1501-holdout}
WEIGHTS=${WEIGHTS:-../shared/weights/mobilenet_v2_imagenet_features.pth}
SRC=${SRC:-experiments/recipes-market1501-holdout}
ROOT=${EXP_ROOT:-experiments/bot-iteration-matched}
SEEDS=${SEEDS:-0 1 2}
LANES=${LANES:-2}
RESULT=${RESULT:-benchmarks/results/bot_iteration_matched.json}
CORES=$(nproc)
THREADS=$(( CORES / LANES > 0 ? CORES / LANES : 1 ))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$THREADS}
export NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-$OMP_NUM_THREADS}
mkdir -p "$ROOT"

if [ "${1:-}" = --one ]; then  # one seed: bot at the reference's iteration count
  SEED=$2
  REF=$SRC/reference-seed$SEED
  [ -f "$REF/reference.json" ] || { echo "error: $REF/reference.json is missing" >&2; exit 2; }
  N=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['result']['iterations'])" \
      "$REF/reference.json")
  ln -sfn "$(realpath "$REF")" "$ROOT/reference-seed$SEED"
  EXP=$ROOT/bot-seed$SEED
  [ -f "$EXP/report.json" ] && { echo "done: $EXP"; exit; }
  CMD=(python -m reidcore run bot --dataset market1501 --data "$DATA" --backbone mobilenet_v2
       --pretrained "$WEIGHTS" --height 128 --width 64 --cache-images --workers 0 --no-progress
       --no-tensorboard --log-every 50 --checkpoint-every 500 --iterations "$N"
       --warmup-iterations $(( N / 12 )) --milestones $(( N / 3 )) $(( N * 7 / 12 ))
       --rerank k-reciprocal --seed "$SEED" --experiment "$EXP")
  echo "$(date -u +%FT%TZ) start bot seed $SEED: $N iterations ($OMP_NUM_THREADS threads)"
  if [ -f "$EXP/args.json" ]; then
    python -m reidcore run --resume --experiment "$EXP" > "$EXP.log" 2>&1
  else
    "${CMD[@]}" > "$EXP.log" 2>&1
  fi
  echo "${CMD[*]}" > "$EXP/command.txt"
  echo "$(date -u +%FT%TZ) end bot seed $SEED"
  exit
fi
for SEED in $SEEDS; do echo "$SEED"; done | xargs -P "$LANES" -n 1 "$0" --one \
  || echo "some runs failed: see $ROOT/*.log" >&2
python benchmarks/collect_recipe_results.py "$ROOT" "$RESULT" --threads "$OMP_NUM_THREADS" \
  --lanes "$LANES" --markdown "${RESULT%.json}.md"
