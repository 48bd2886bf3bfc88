#!/usr/bin/env bash
# The claim test on a lent GPU machine (no DVC there): every variant under both pricings
# (this project's default and the authors', docs/pricing.md), the same stage commands as
# dvc.yaml, all 12 runs trained at once on the one GPU under the same training budget; beside
# them, a few one-change learning levers of `plain` (benchmarks/time_to_bleu.py, 2 epochs each).
# Usage: OUT=<dir> TRAIN_MINUTES=<m> bash benchmarks/gpu_claim_run.sh
# Everything it produces is packed into $OUT/claim_run.tgz (again after each phase, so a run
# cut short still brings back what it finished).
set -uo pipefail
export PYTHONUNBUFFERED=1 COLUMNS=160 OMP_NUM_THREADS=1 PYTHONPATH=$PWD  # 16 processes share 16 cores
OUT=${OUT:?set OUT}; MINUTES=${TRAIN_MINUTES:-5}; EPOCHS=${EPOCHS:-10}; PY=${PYTHON:-python3}
VARIANTS=${VARIANTS:-"encdec plain none deterministic gaussian gumbel"}; LEVER_EPOCHS=${LEVER_EPOCHS:-2}
EXTRA=${EXTRA_PARAMS:-"{}"}  # a JSON dict of section.key overrides for a small rehearsal on a CPU
ROOT=$PWD; WORK=${WORK:-/tmp/claim}; mkdir -p "$OUT/logs" "$WORK"
pack() { tar czf "$OUT/claim_run.tgz" -C "$WORK" --exclude='*/models' --exclude='*/checkpoints' \
  --exclude='*/data' --exclude='*/vae' --exclude='*/stages' . -C "$OUT" logs 2>/dev/null; }
$PY - <<'PY' | tee "$OUT/logs/env.txt"
import torch, sentencepiece, sacrebleu, platform
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else None,
      "sentencepiece", sentencepiece.__version__, "sacrebleu", sacrebleu.__version__)
PY
# set_params FILE PRICING: the run's settings, written into a copy of params.yaml.
set_params() { $PY - "$@" "$MINUTES" "$EPOCHS" "$EXTRA" <<'PY'
import json, sys, yaml
path, pricing, minutes, epochs, extra = sys.argv[1:]
p = yaml.safe_load(open(path))
def put(key, value):
    *head, last = key.split(".")
    node = p
    for k in head:
        node = node[k]
    node[last] = value
common = {"train.epochs": int(epochs), "train.max_minutes": float(minutes), "train.max_tokens": 1500,
          "train.learning_rate": 0.003, "train.precision": "fp32", "decode.beam_size": 5, "decode.max_tokens": 60000}
authors = {"train.pricing.unit": "token", "train.pricing.kl_a_weight": "annealed", "train.kl.schedule": "tanh",
           "train.kl.max_weight": 1.0, "train.kl.tanh_centre": 4500, "train.kl.tanh_width": 1000,
           "train.kl.freeze_step": 3000, "variants.gaussian.gamma_a": 0.1, "variants.gumbel.gamma_a": 0.1,
           "variants.gaussian.gaussian_prior": "encoder_mean", "train.word_dropout": 0.25}
for key, value in {**common, **(authors if pricing == "authors" else {}), **json.loads(extra)}.items():
    put(key, value)
yaml.safe_dump(p, open(path, "w"), sort_keys=False, allow_unicode=True)
PY
}
t0=$(date +%s)
for stage in download prepare tokenize; do $PY -m stages.$stage >> "$OUT/logs/data.log" 2>&1 || exit 1; done
echo "data stages: $(( $(date +%s) - t0 ))s" | tee -a "$OUT/logs/times.txt"

for pricing in default authors; do
  mkdir -p "$WORK/$pricing/results"; cp -r stages vae params.yaml "$WORK/$pricing/"
  ln -sfn "$ROOT/data" "$WORK/$pricing/data"; set_params "$WORK/$pricing/params.yaml" $pricing || exit 1
done
cp "$WORK/default/params.yaml" "$OUT/logs/lever_params.yaml"

# The levers: each changes one thing against the default pricing's `plain` (its train.csv is the baseline).
lever() { name=$1; shift
  timeout $(( ${MINUTES%.*} * 60 + 150 )) $PY benchmarks/time_to_bleu.py --params "$WORK/default/params.yaml" --variant plain --config "$name" --epochs "$LEVER_EPOCHS" \
    --checkpoints "$WORK/levers/checkpoints" --out "$WORK/levers/$name.json" "$@" > "$OUT/logs/lever_$name.log" 2>&1 & }
mkdir -p "$WORK/levers"
if [ "${LEVERS:-1}" = 1 ]; then
  lever lr5e-3 -S train.learning_rate=0.005
  lever xavier -S model.init=xavier
  lever noclip -S train.clip_norm=1000000.0
  lever ls0.1 -S train.label_smoothing=0.1
fi

# every_run STAGE LABEL: one stage for every (pricing, variant) at once, timed into times.txt
every_run() { local stage=$1 label=$2 start; start=$(date +%s); local pids=()
  for pricing in default authors; do for v in $VARIANTS; do
    (cd "$WORK/$pricing" && $PY -m stages.$stage --variant $v > "${stage}_$v.log" 2>&1) & pids+=($!)
  done; done
  wait "${pids[@]}"
  echo "$label: $(( $(date +%s) - start ))s" | tee -a "$OUT/logs/times.txt"; pack
}
every_run train "train (12 at once, ${MINUTES} min cap)"
every_run decode "decode (beam 5, all test pairs, 12 at once)"
every_run diagnose "diagnose (12 at once)"
for pricing in default authors; do (cd "$WORK/$pricing" && $PY -m stages.evaluate > evaluate.log 2>&1); done
pack
wait  # the levers (each epoch's point is also in its log, should the timeout end one)
echo "total: $(( $(date +%s) - t0 ))s" | tee -a "$OUT/logs/times.txt"; pack
