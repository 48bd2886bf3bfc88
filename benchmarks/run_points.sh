#!/usr/bin/env bash
# Run points of the studies pipeline one after another, committing each point's results and the
# studies' lock as soon as it finishes, so that a session that ends mid-way loses at most one point.
#
#   nohup benchmarks/run_points.sh curve-gaussian-b-g5e-5 seed2-plain ... > logs/points.log 2>&1 &
#
# Each point is `dvc repro` of its decode, decode_dev and diagnose stages (which train it first);
# its log is logs/points/<point>.log. A point that fails is reported and skipped. While the file
# logs/points.pause exists no new point starts (say, to run the tests on a quiet machine: two jobs
# on two cores slow each other's training several times over).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p logs/points
for point in "$@"; do
  while [ -e logs/points.pause ]; do sleep 10; done
  start=$(date +%s)
  echo "$(date -u +%FT%TZ) $point: started"
  if dvc repro "studies/dvc.yaml:decode@$point" "studies/dvc.yaml:decode_dev@$point" \
       "studies/dvc.yaml:diagnose@$point" > "logs/points/$point.log" 2>&1; then
    files=(studies/dvc.lock dvc.lock studies/models/.gitignore "results/studies/train/$point.json" "results/studies/train/$point"
           "results/studies/decode/$point.txt" "results/studies/decode/$point.json"
           "results/studies/decode_dev/$point.txt" "results/studies/decode_dev/$point.json"
           "results/studies/diagnose/$point.json")
    for attempt in 1 2 3; do  # another commit may hold git's index lock for a moment
      git add -- "${files[@]}" && git commit -q -m "Study point $point (studies/dvc.yaml, $(( ($(date +%s) - start) / 60 )) min on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), 2 cores)" -- "${files[@]}" && break
      sleep 5
    done
    echo "$(date -u +%FT%TZ) $point: done in $(( $(date +%s) - start ))s"
  else
    echo "$(date -u +%FT%TZ) $point: FAILED after $(( $(date +%s) - start ))s (logs/points/$point.log)"
  fi
done
