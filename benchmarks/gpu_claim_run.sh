#!/usr/bin/env bash
# The claim test on a lent GPU machine (no DVC there): variants under both pricings (this
# project's default and the authors', docs/pricing.md), the same stage commands as dvc.yaml,
# all runs trained at once on the one GPU under the same training budget; beside them, a few
# one-change learning levers of `plain` (benchmarks/time_to_bleu.py, LEVER_EPOCHS each).
# Usage: OUT=<dir> TRAIN_MINUTES=<m> bash benchmarks/gpu_claim_run.sh
#   RUNS="default:v1,v2 authors:v1": which variants each pricing trains (default: all six under both)
#   EXTRA_VARIANTS='{"name": {variant keys}}': variants added to both pricings' params.yaml (name them in RUNS)
#   LEVERS='name -S key=value ...;name2 ...': the lever runs (default: last session's four)
# Everything it produces is packed into $OUT/claim_run.tgz (again after each phase, so a run
# cut short still brings back what it finished).
set -uo pipefail
export PYTHONUNBUFFERED=1 COLUMNS=160 OMP_NUM_THREADS=1 PYTHONPATH=$PWD  # 16 processes share 16 cores
OUT=${OUT:?set OUT}; MINUTES=${TRAIN_MINUTES:-5}; EPOCHS=${EPOCHS:-10}; PY=${PYTHON:-python3}
ALL_SIX=encdec,plain,none,deterministic,gaussian,gumbel; RUNS=${RUNS:-"default:$ALL_SIX authors:$ALL_SIX"}
EXTRA_VARIANTS=${EXTRA_VARIANTS:-"{}"}; LEVER_EPOCHS=${LEVER_EPOCHS:-2}
LEVERS=${LEVERS:-"lr5e-3 -S train.learning_rate=0.005;xavier -S model.init=xavier;noclip -S train.clip_norm=1000000.0;ls0.1 -S train.label_smoothing=0.1"}
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
# set_params FILE PRICING VARIANTS: the run's settings, written into a copy of params.yaml.
set_params() { $PY - "$@" "$MINUTES" "$EPOCHS" "$EXTRA" "$EXTRA_VARIANTS" <<'PY'
import json, os, sys, yaml
TOKENS = os.environ.get("MAX_TOKENS", 1500)
path, pricing, variants, minutes, epochs, extra, extra_variants = sys.argv[1:]
p = yaml.safe_load(open(path))
p["variants"].update(json.loads(extra_variants))  # under either pricing; RUNS picks which train
def put(key, value):
    *head, last = key.split(".")
    node = p
    for k in head:
        node = node[k]
    node[last] = value
common = {"train.epochs": int(epochs), "train.max_minutes": float(minutes), "train.max_tokens": int(TOKENS),
          "train.learning_rate": 0.003, "train.precision": "fp32", "decode.beam_size": 5, "decode.max_tokens": 60000}
authors = {"train.pricing.unit": "token", "train.pricing.kl_a_weight": "annealed", "train.kl.schedule": "tanh",
           "train.kl.max_weight": 1.0, "train.kl.tanh_centre": 4500, "train.kl.tanh_width": 1000,
           "train.kl.freeze_step": 3000, "variants.gaussian.gamma_a": 0.1, "variants.gumbel.gamma_a": 0.1,
           "variants.gaussian.gaussian_prior": "encoder_mean", "train.word_dropout": 0.25, "model.dropout": 0.2,
           "variants.plain.attention_kl_price": 0.0, "variants.deterministic.attention_kl_price": 0.0}
for key, value in {**common, **(authors if pricing == "authors" else {}), **json.loads(extra)}.items():
    put(key, value)
p["variants"] = {k: v for k, v in p["variants"].items() if k in variants.split(",")}
p["evaluate"]["baselines"] = [b for b in p["evaluate"]["baselines"] if b in p["variants"]]
yaml.safe_dump(p, open(path, "w"), sort_keys=False, allow_unicode=True)
PY
}
t0=$(date +%s)
for stage in download prepare tokenize; do $PY -m stages.$stage >> "$OUT/logs/data.log" 2>&1 || exit 1; done
echo "data stages: $(( $(date +%s) - t0 ))s" | tee -a "$OUT/logs/times.txt"

for run in $RUNS; do pricing=${run%%:*}
  mkdir -p "$WORK/$pricing/results"; cp -r stages vae params.yaml "$WORK/$pricing/"
  ln -sfn "$ROOT/data" "$WORK/$pricing/data"; set_params "$WORK/$pricing/params.yaml" $pricing "${run#*:}" || exit 1
done
# the levers start from the default pricing at 1,500-token batches, whatever the runs use
mkdir -p "$WORK/levers"; cp params.yaml "$WORK/levers/params.yaml"
MAX_TOKENS=1500 EXTRA_VARIANTS="{}" set_params "$WORK/levers/params.yaml" default $ALL_SIX || exit 1
cp "$WORK/levers/params.yaml" "$OUT/logs/lever_params.yaml"

# The levers: each changes one thing against the default pricing's `plain` (its train.csv is the baseline).
lever() { name=$1; shift
  timeout $(( ${MINUTES%.*} * 60 + 150 )) $PY benchmarks/time_to_bleu.py --params "$WORK/levers/params.yaml" --variant plain --config "$name" --epochs "$LEVER_EPOCHS" \
    --checkpoints "$WORK/levers/checkpoints" --out "$WORK/levers/$name.json" "$@" > "$OUT/logs/lever_$name.log" 2>&1 & }
IFS=';' read -ra lever_lines <<< "$LEVERS"
for line in "${lever_lines[@]}"; do [ -n "${line// }" ] && lever $line; done

# every_run STAGE LABEL: one stage for every (pricing, variant) at once, timed into times.txt
every_run() { local stage=$1 label=$2 start; start=$(date +%s); local pids=()
  for run in $RUNS; do pricing=${run%%:*}; vs=${run#*:}; for v in ${vs//,/ }; do
    (cd "$WORK/$pricing" && $PY -m stages.$stage --variant $v > "${stage}_$v.log" 2>&1) & pids+=($!)
  done; done
  wait "${pids[@]}"
  echo "$label: $(( $(date +%s) - start ))s" | tee -a "$OUT/logs/times.txt"; pack
}
every_run train "train (all at once, ${MINUTES} min cap, ${EPOCHS} epochs)"
every_run decode "decode (beam 5, all test pairs, all at once)"
every_run diagnose "diagnose (all at once)"
for run in $RUNS; do (cd "$WORK/${run%%:*}" && $PY -m stages.evaluate > evaluate.log 2>&1); done
pack
wait  # the levers (each epoch's point is also in its log, should the timeout end one)
echo "total: $(( $(date +%s) - t0 ))s" | tee -a "$OUT/logs/times.txt"; pack
