#!/usr/bin/env bash
# Every recipe (trinet, dcnn, pose-maps, pse, san, bot) and the plain reference
# (benchmarks/reference/bot_reference.py) on the real Market-1501 holdout split at ONE training
# budget, two seeds each, with and without re-ranking (k-reciprocal; ECN for pse), collected
# into benchmarks/results/recipes_market1501_holdout.json (mean and spread per recipe) by
# benchmarks/collect_recipe_results.py. Same backbone and input for all: MobileNetV2 ImageNet
# features, 128×64. Each recipe keeps its paper's schedule; --fit-schedule-to-budget times the
# first iterations and scales the iteration count (warm-up, decay points, stages) so the whole
# schedule fits --max-train-minutes. The reference lays the same schedule over its budget itself.
#
#   benchmarks/recipes_market1501_holdout.sh                 # everything: 8 × 2 runs × MINUTES
#   RECIPES="reference bot" SEEDS=0 MINUTES=6 benchmarks/recipes_market1501_holdout.sh
#   LANES=2 benchmarks/recipes_market1501_holdout.sh         # two runs at a time, one core each
#
# Runs go seed by seed (every recipe's seed 0 first). LANES runs that many at once, each with
# cores/LANES threads (OMP_NUM_THREADS, NUMBA_NUM_THREADS); every run then has the same share of
# the machine, which the JSON records. rgb-only is pose-maps with --no-pose-channels (the PSE
# ablation of benchmarks/pse_ablation_market1501_holdout.sh reads these runs).
#
# Needs ../shared/data/market1501-holdout and ../shared/weights (see ../shared/data/README.md).
# Finished runs (report.json present) are kept; interrupted ones resume; a run whose folder has
# a RECIPE-seedN.skip file beside it is left out (to shorten a queue already started).
# Environment: DATA, WEIGHTS, MINUTES (15), SEEDS ("0 1"), RECIPES, EXP_ROOT, RESULT, LANES (1).
# SAN's texture targets (TEXTURES): keypoints (default; `san keypoint-textures` from the
# holdout's keypoints.csv, body parts warped into the layout) or san-pg (SAN-PG trained on
# synthetic textures, PG_ITERS, PG_MINUTES, not counted in SAN's budget, then its predictions;
# its L1 on unseen synthetic identities was worse than a constant median texture's, see
# benchmarks/results/san_market1501_holdout.json). san-rec0 is san with
# --reconstruction-weight 0 (no texture supervision), not in the default RECIPES.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/market1501-holdout}
WEIGHTS=${WEIGHTS:-../shared/weights/mobilenet_v2_imagenet_features.pth}
MINUTES=${MINUTES:-15}
SEEDS=${SEEDS:-0 1}
RECIPES=${RECIPES:-reference bot dcnn pse pose-maps rgb-only trinet san}
ROOT=${EXP_ROOT:-experiments/recipes-market1501-holdout}
RESULT=${RESULT:-benchmarks/results/recipes_market1501_holdout.json}
PG_ITERS=${PG_ITERS:-600}
PG_MINUTES=${PG_MINUTES:-10}
TEXTURES=${TEXTURES:-keypoints}
TEXTURE_DIR=$ROOT/texture_market1501-$TEXTURES
LANES=${LANES:-1}
CORES=$(nproc)
THREADS=$(( CORES / LANES > 0 ? CORES / LANES : 1 ))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$THREADS}
export NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-$OMP_NUM_THREADS}
mkdir -p "$ROOT"

BASE=(--backbone mobilenet_v2 --pretrained "$WEIGHTS" --height 128 --width 64 --cache-images
      --workers 0 --no-progress --no-tensorboard --log-every 50 --checkpoint-every 500
      --max-train-minutes "$MINUTES" --fit-schedule-to-budget)

san_textures() {  # the texture targets of `san` (once): keypoint-warped, or SAN-PG's
  if [ "$TEXTURES" = keypoints ]; then
    [ -d "$TEXTURE_DIR" ] || python -m reidcore san keypoint-textures --dataset market1501 \
      --data "$DATA" --output "$TEXTURE_DIR" --size 64
    return
  fi
  local pg=$ROOT/san-pg
  local cmd=(python -m reidcore train san-pg --dataset synthetic-textures --backbone mobilenet_v2
             --pretrained "$WEIGHTS" --height 128 --width 64 --last-stride 1 --texture-size 64
             --decoder-width 128 --cache-images --workers 0 --no-progress --log-every 50
             --iterations "$PG_ITERS" --lr 1e-3 --milestones $(( PG_ITERS * 2 / 3 ))
             --checkpoint-every 1000 --max-train-minutes "$PG_MINUTES" --experiment "$pg")
  if [ ! -d "$TEXTURE_DIR" ]; then
    if [ -f "$pg/args.json" ]; then "${cmd[@]}" --resume; else "${cmd[@]}"; fi
    python -m reidcore san textures --model "$pg" --input "$DATA/bounding_box_train" \
      --output "$TEXTURE_DIR" --size 64
  fi
}

recipe_args() {  # RECIPE -> the flags of its run (dataset, batch, re-ranker, its own extras)
  case $1 in
    trinet)    echo --dataset market1501 --batch-p 16 --batch-k 4 --rerank k-reciprocal ;;
    dcnn)      echo --dataset market1501 --rerank k-reciprocal ;;  # its own P×K 8×4 (batch 32)
    pose-maps) echo --dataset market1501-pose-maps --batch-p 16 --batch-k 4 --rerank k-reciprocal ;;
    rgb-only)  echo pose-maps --no-pose-channels --dataset market1501-pose-maps --batch-p 16 \
                    --batch-k 4 --rerank k-reciprocal ;;
    pse)       echo --dataset market1501-pose-maps --batch-p 16 --batch-k 4 --rerank ecn ;;
    san)       echo --dataset market1501 --last-stride 1 --texture-size 64 --decoder-width 128 \
                    --textures "$TEXTURE_DIR" --rerank k-reciprocal ;;
    san-rec0)  echo san --dataset market1501 --last-stride 1 --texture-size 64 --decoder-width 128 \
                    --reconstruction-weight 0 --rerank k-reciprocal ;;  # no texture supervision
    bot)       echo --dataset market1501 --rerank k-reciprocal ;;
    *) echo "unknown recipe $1" >&2; return 1 ;;
  esac
}

run_one() {  # RECIPE SEED: train, embed and evaluate one run (kept when finished, resumed when not)
  local RECIPE=$1 SEED=$2
  local EXP=$ROOT/$RECIPE-seed$SEED
  exec 9> "$EXP.lock"  # a run another script instance is doing: wait for it, then keep it
  flock 9
  if [ -f "$EXP/report.json" ]; then echo "done: $EXP"; return; fi
  if [ -f "$EXP.skip" ]; then echo "skipped: $EXP ($EXP.skip exists)"; return; fi
  [ "$RECIPE" = san ] && san_textures
  if [ "$RECIPE" = reference ]; then
    CMD=(python benchmarks/reference/bot_reference.py --data "$DATA" --weights "$WEIGHTS"
         --minutes "$MINUTES" --seed "$SEED" --output "$EXP/reference.json"
         --embeddings-dir "$EXP/embeddings")
    mkdir -p "$EXP"
    echo "${CMD[*]}" > "$EXP/command.txt"
    "${CMD[@]}" > "$EXP/train.log" 2>&1
    python -m reidcore evaluate --query-embeddings "$EXP/embeddings/query.h5" \
      --gallery-embeddings "$EXP/embeddings/gallery.h5" --metric cosine --rerank k-reciprocal \
      --output "$EXP/report.json"
    return
  fi
  local NAME=$RECIPE
  case $RECIPE in rgb-only|san-rec0) NAME= ;; esac  # their flags name the recipe
  # shellcheck disable=SC2046,SC2086  # recipe_args is a list of flags
  CMD=(python -m reidcore run $NAME --data "$DATA" "${BASE[@]}" $(recipe_args "$RECIPE")
       --seed "$SEED" --experiment "$EXP")
  if [ -f "$EXP/args.json" ]; then
    python -m reidcore run --resume --experiment "$EXP"
  else
    "${CMD[@]}"
  fi
  echo "${CMD[*]}" > "$EXP/command.txt"
}

if [ "${1:-}" = --one ]; then  # one run, its output in ROOT/RECIPE-seedSEED.log
  echo "$(date -u +%FT%TZ) start $2 seed $3 ($OMP_NUM_THREADS threads)"
  run_one "$2" "$3" > "$ROOT/$2-seed$3.log" 2>&1
  echo "$(date -u +%FT%TZ) end $2 seed $3: exit $?"
  exit
fi
for RECIPE in $RECIPES; do
  [ "$RECIPE" = reference ] || recipe_args "$RECIPE" > /dev/null || exit 2
done
for SEED in $SEEDS; do
  for RECIPE in $RECIPES; do echo "$RECIPE $SEED"; done
done | xargs -P "$LANES" -n 2 "$0" --one || echo "some runs failed: see $ROOT/*.log" >&2
python benchmarks/collect_recipe_results.py "$ROOT" "$RESULT" --minutes "$MINUTES" \
  --threads "$OMP_NUM_THREADS" --lanes "$LANES" --markdown "${RESULT%.json}.md"
