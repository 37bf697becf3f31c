#!/usr/bin/env bash
# SAN's pipeline on real images (Jin et al., AAAI 2020), at most ~30 minutes on 2 CPU cores:
#   1. san-pg (SA-Enc + SA-Dec, reconstruction loss only) on the synthetic (image, true texture)
#      pairs of `synthetic-textures` (the role of the paper's PIT dataset), <= $PG_MINUTES;
#   2. pseudo textures (64x64) for the Market-1501 holdout's training images with that SAN-PG;
#   3. `run san` on the holdout with those textures (ID + triplet + L1 reconstruction +
#      decoder-map triplets), <= $SAN_MINUTES;
#   4. the same `run san` with --reconstruction-weight 0 (no texture supervision; the decoder's
#      perceptual triplet terms stay), same iterations and time budget.
# MobileNetV2 (ImageNet features) with last stride 1, 128x64 input, 64x64 textures, a slim
# decoder (--decoder-width 128; the paper's 512 costs ~40x the encoder's FLOPs at this size).
# The schedule is the seed's (AMSGrad 8e-4, warm-up 20/320 of training, lr halved at epochs
# 60, 100, ..., 300 of 320) compressed to $SAN_ITERS iterations.
# Writes experiments under $EXP (default experiments/san-market1501-holdout) and a summary with
# both reports to $RESULT (default benchmarks/results/san_market1501_holdout.json).
# Needs ../shared/data/market1501-holdout and ../shared/weights (see ../shared/data/README.md).
# Smoke test on other data: DATA=DIR PG_ITERS=3 SAN_ITERS=3 RESULT=/tmp/x.json EXP=/tmp/e $0
set -euo pipefail
cd "$(dirname "$0")/.."
EXP=${EXP:-experiments/san-market1501-holdout}
DATA=${DATA:-../shared/data/market1501-holdout}
WEIGHTS=${WEIGHTS:-../shared/weights/mobilenet_v2_imagenet_features.pth}
RESULT=${RESULT:-benchmarks/results/san_market1501_holdout.json}
PG_ITERS=${PG_ITERS:-600}
PG_MINUTES=${PG_MINUTES:-10}
SAN_ITERS=${SAN_ITERS:-800}
SAN_MINUTES=${SAN_MINUTES:-9}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# the seed's schedule in fractions of training: warm-up 20/320, milestones (20 + 40k)/320
WARMUP=$(( SAN_ITERS * 20 / 320 ))
MILESTONES=$(python -c "print(' '.join(str(max(1, $SAN_ITERS * (20 + e) // 320)) for e in range(40, 300, 40)))")
COMMON=(--backbone mobilenet_v2 --pretrained "$WEIGHTS" --height 128 --width 64 --last-stride 1
        --texture-size 64 --decoder-width 128 --cache-images --workers 0 --no-progress
        --log-every 50 --device cpu)

PG_CMD=(python -m reidcore train san-pg --dataset synthetic-textures "${COMMON[@]}"
        --iterations "$PG_ITERS" --lr 1e-3 --milestones $(( PG_ITERS * 2 / 3 ))
        --checkpoint-every 1000 --max-train-minutes "$PG_MINUTES" --experiment "$EXP/san-pg")
TEX_CMD=(python -m reidcore san textures --model "$EXP/san-pg" --input "$DATA/bounding_box_train"
         --output "$EXP/texture_market1501" --size 64 --device cpu)
SAN_CMD=(python -m reidcore run san --dataset market1501 --data "$DATA" "${COMMON[@]}"
         --iterations "$SAN_ITERS" --warmup-iterations "$WARMUP" --milestones $MILESTONES
         --checkpoint-every 1000 --max-train-minutes "$SAN_MINUTES")
REC_CMD=("${SAN_CMD[@]}" --textures "$EXP/texture_market1501" --experiment "$EXP/san")
NOREC_CMD=("${SAN_CMD[@]}" --reconstruction-weight 0 --experiment "$EXP/san-rec0")

# each step resumes an interrupted run of this script and skips a finished one
train_step() {  # DIR CMD...: run CMD unless DIR has its report; --resume when DIR exists
  local dir=$1; shift
  if [ -f "$dir/report.json" ]; then return; fi
  if [ -f "$dir/args.json" ]; then "$@" --resume; else "$@"; fi
}
if [ -f "$EXP/san-pg/args.json" ]; then "${PG_CMD[@]}" --resume; else "${PG_CMD[@]}"; fi
"${TEX_CMD[@]}"  # keeps textures already written
train_step "$EXP/san" "${REC_CMD[@]}"
train_step "$EXP/san-rec0" "${NOREC_CMD[@]}"

python - "$EXP" "$RESULT" "${PG_CMD[*]}" "${TEX_CMD[*]}" "${REC_CMD[*]}" "${NOREC_CMD[*]}" <<'PY'
import json, os, platform, re, sys
exp, result, pg_cmd, tex_cmd, rec_cmd, norec_cmd = sys.argv[1:]
def last_log_value(path, key):
    values = re.findall(rf"{re.escape(key)} ([0-9.eE+-]+)", open(path).read())
    return float(values[-1]) if values else None
def pg_test_l1():
    """SAN-PG's L1 on the unseen identities of synthetic-textures, and a constant baseline's."""
    import numpy as np
    from PIL import Image
    from reid_san.generator import texture_l1, load_texture_generator
    from reid_san.textures import read_synthetic_textures
    gen, cfg = load_texture_generator(os.path.join(exp, "san-pg"))
    split = read_synthetic_textures(None, texture_size=cfg.texture_size)
    test = split.query + split.gallery
    load = lambda s: np.asarray(Image.open(s.extras["texture"]).convert("RGB"), np.float32) / 255
    median = np.median(np.stack([load(s) for s in split.train]), 0)
    baseline = float(np.mean([np.abs(load(s) - median).mean() for s in test]))
    return texture_l1(gen, test, cfg.height, cfg.width, cfg.texture_size), baseline
pg_l1, median_l1 = pg_test_l1()
san = json.load(open(os.path.join(exp, "san", "report.json")))
rec0 = json.load(open(os.path.join(exp, "san-rec0", "report.json")))
keys = ("rank1", "rank5", "mAP", "mINP")
out = {
    "commands": {"san_pg": pg_cmd, "textures": tex_cmd, "san": rec_cmd,
                 "san_reconstruction_weight_0": norec_cmd},
    "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    "san_pg_last_reconstruction_l1": last_log_value(os.path.join(exp, "san-pg", "train.log"),
                                                    "reconstruction/mae"),
    "san_pg_test_l1": pg_l1,  # synthetic-textures query + gallery (unseen identities)
    "median_texture_test_l1": median_l1,  # constant baseline: per-pixel median train texture
    "num_textures": len([f for f in os.listdir(os.path.join(exp, "texture_market1501"))
                         if f.endswith(".png")]),
    "san": san,
    "san_reconstruction_weight_0": rec0,
    "texture_supervision_minus_weight_0": {k: san[k] - rec0[k] for k in keys if k in san},
}
os.makedirs(os.path.dirname(result) or ".", exist_ok=True)
with open(result + ".tmp", "w") as f:
    json.dump(out, f, indent=2)
os.replace(result + ".tmp", result)
for name, r in (("san (textures)", san), ("san (reconstruction weight 0)", rec0)):
    print(f"{name:32s} rank-1 {100 * r['rank1']:.1f}%  mAP {100 * r['mAP']:.1f}%  "
          f"iterations {r['train']['iteration']} ({r['train']['stopped']}, "
          f"{r['train']['seconds']:.0f} s)")
print(f"SAN-PG L1 on unseen synthetic identities {pg_l1:.4f} (median-texture baseline "
      f"{median_l1:.4f})")
print("wrote", result)
PY
