#!/usr/bin/env bash
# The price map on a lent GPU machine (no DVC there): every point of params.yaml's `price_map`
# grid trained at once on the one GPU by the same stage commands as dvc.yaml, then the report.
# Usage: OUT=<dir> TRAIN_MINUTES=<m> bash benchmarks/gpu_price_map.sh  (it rewrites params.yaml: run it in a copy,
# as the lent machine's checkout is)
# TRAIN_MINUTES caps each point's training (train.max_minutes) so that the grid fits a lease;
# the map's README then says how many updates each point got. POINT_SECONDS ends a point that
# would outlast the lease (it is then missing from the map).
set -uo pipefail
export PYTHONUNBUFFERED=1 COLUMNS=160 OMP_NUM_THREADS=1 PYTHONPATH=$PWD
OUT=${OUT:?set OUT}; MINUTES=${TRAIN_MINUTES:-0}; PY=${PYTHON:-python3}; mkdir -p "$OUT/logs"
EXTRA=${EXTRA_PARAMS:-"{}"}  # a JSON dict of section.key overrides, for a small rehearsal on a CPU
$PY - "$MINUTES" "$EXTRA" <<'PY'
import json, sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["train"]["max_minutes"] = float(sys.argv[1]); p["train"]["precision"] = "fp32"  # autocast bf16 untested for CUDA LSTMs
for key, value in json.loads(sys.argv[2]).items():
    *head, last = key.split("."); node = p
    for k in head: node = node[k]
    node[last] = value
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False, allow_unicode=True)
PY
t0=$(date +%s)
for stage in download prepare tokenize; do $PY -m stages.$stage >> "$OUT/logs/data.log" 2>&1 || exit 1; done
POINTS=$($PY -c "
from vae.config import load_params
m = load_params().price_map
for v in m.variants:
    for z in m.kl_z_prices:
        for a in m.kl_a_prices: print(f'{v}:{z}:{a}')
for z in m.kl_z_prices: print(f'{m.reference}:{z}:')")
for point in $POINTS; do
  IFS=: read -r v z a <<< "$point"
  ( timeout "${POINT_SECONDS:-3600}" $PY -m stages.price_map --variant "$v" --kl-z "$z" ${a:+--kl-a "$a"} > "$OUT/logs/$v-$z-$a.log" 2>&1 ) &
done
wait
echo "points ($(echo $POINTS | wc -w) at once): $(( $(date +%s) - t0 ))s" | tee "$OUT/logs/times.txt"
$PY -m stages.price_map_report >> "$OUT/logs/report.log" 2>&1
cp params.yaml "$OUT/logs/params.yaml"
tar czf "$OUT/price_map.tgz" results/price_map -C "$OUT" logs
