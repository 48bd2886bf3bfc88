#!/usr/bin/env bash
# The reference-scale run on a lent GPU machine (no DVC there): the same stage commands as
# dvc.yaml, in dependency order, every variant trained concurrently on the one GPU.
# Usage: OUT=<dir> TRAIN_BUDGET_S=<seconds> bash benchmarks/gpu_full_run.sh
# Epoch 1 of every variant is timed first; the run then extends to as many epochs as fit in
# TRAIN_BUDGET_S (training resumes from the epoch-1 checkpoints: nothing is trained twice).
set -euo pipefail
export PYTHONUNBUFFERED=1 COLUMNS=160 OMP_NUM_THREADS=3  # 5 concurrent runs share 16 cores
OUT=${OUT:?set OUT}; BUDGET=${TRAIN_BUDGET_S:-300}; MAX_EPOCHS=${MAX_EPOCHS:-30}
VARIANTS="plain none deterministic gaussian gumbel"; PY=${PYTHON:-python3}
mkdir -p "$OUT/logs"
$PY - <<'PY' | tee "$OUT/logs/env.txt"
import torch, sentencepiece, sacrebleu, platform
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else None,
      "sentencepiece", sentencepiece.__version__, "sacrebleu", sacrebleu.__version__)
PY
set_reference_params() { $PY - "$1" <<'PY'
import sys, yaml
p = yaml.safe_load(open("params.yaml")); p["train"]["epochs"] = int(sys.argv[1]); p["decode"]["max_tokens"] = 60000
p["train"]["kl"]["warmup_steps"] = 5000; p["train"]["precision"] = "fp32"; p["decode"]["beam_size"] = 5  # the reference schedule, not the CPU run's
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PY
}
t0=$(date +%s)
for stage in download prepare tokenize; do $PY -m stages.$stage 2>&1 | tee -a "$OUT/logs/data.log"; done
echo "data stages: $(( $(date +%s) - t0 ))s" | tee -a "$OUT/logs/times.txt"

train_all() { for v in $VARIANTS; do $PY -m stages.train --variant $v >> "$OUT/logs/train_$v.log" 2>&1 & done; wait; }
set_reference_params 1; t1=$(date +%s); train_all; epoch1=$(( $(date +%s) - t1 ))
epochs=$(( BUDGET / (epoch1 > 0 ? epoch1 : 1) )); epochs=$(( epochs < 1 ? 1 : (epochs > MAX_EPOCHS ? MAX_EPOCHS : epochs) ))
echo "epoch 1 (5 variants at once): ${epoch1}s -> training to $epochs epochs" | tee -a "$OUT/logs/times.txt"
set_reference_params "$epochs"; t2=$(date +%s); train_all
echo "train epochs 2-$epochs: $(( $(date +%s) - t2 ))s" | tee -a "$OUT/logs/times.txt"
tar czf "$OUT/gpu_run.tgz" results "$OUT/logs"  # what is done so far, should the rest run out of time

t3=$(date +%s)
for v in $VARIANTS; do $PY -m stages.decode --variant $v >> "$OUT/logs/decode_$v.log" 2>&1 & done; wait
echo "decode (5 at once): $(( $(date +%s) - t3 ))s" | tee -a "$OUT/logs/times.txt"
$PY -m stages.evaluate > "$OUT/logs/evaluate.log" 2>&1 || true
tar czf "$OUT/gpu_run.tgz" results "$OUT/logs"

t4=$(date +%s)
for v in $VARIANTS; do $PY -m stages.diagnose --variant $v >> "$OUT/logs/diagnose_$v.log" 2>&1 & done; wait
$PY -m stages.figures > "$OUT/logs/figures.log" 2>&1 || true
$PY -m stages.evaluate > "$OUT/logs/evaluate.log" 2>&1 || true
echo "diagnose (5 at once) + figures + evaluate: $(( $(date +%s) - t4 ))s" | tee -a "$OUT/logs/times.txt"
$PY -m stages.report > "$OUT/logs/report.log" 2>&1 || true
echo "total: $(( $(date +%s) - t0 ))s" | tee -a "$OUT/logs/times.txt"
cp params.yaml "$OUT/logs/params.yaml"
tar czf "$OUT/gpu_run.tgz" results "$OUT/logs"
