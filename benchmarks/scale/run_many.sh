#!/usr/bin/env bash
# Placement groups, actors, nodes and transfers for Nebula and Ray, one JSON line each.
# Usage: benchmarks/scale/run_many.sh [NEBULA_PYTHON] [RAY_PYTHON] > many.jsonl
set -u
NEB=${1:-.venv/bin/python}
RAY=${2:-/work/peers/ray/bin/python}
HERE=$(dirname "$0")
export NEBULA_INCLUDE_DASHBOARD=0 RAY_DISABLE_USAGE_STATS=1
run() {  # lib python script args...
  local lib=$1 py=$2 script=$3; shift 3
  local out
  out=$(flock /work/bench.lock timeout 900 "$py" "$HERE/$script" --lib "$lib" "$@" 2>/tmp/scale_many_err.txt | grep '^{' | tail -1)
  if [ -z "$out" ]; then
    out="{\"status\": \"failed: $(tail -1 /tmp/scale_many_err.txt | tr -d '"\\' | cut -c1-150)\"}"
  fi
  echo "{\"lib\": \"$lib\", \"script\": \"$script\", \"args\": \"$*\", \"result\": $out}"
}
for lib in nebula ray; do
  py=$NEB; [ "$lib" = ray ] && py=$RAY
  run $lib $py transfer.py --mib 1024 --readers 1 --repeat 3
  run $lib $py transfer.py --mib 1024 --readers 4 --repeat 2
  run $lib $py many.py --workload placement_groups --size 1000
  run $lib $py many.py --workload actors --size 200
  run $lib $py many.py --workload nodes --size 10 --tasks 10000
done
run nebula $NEB many.py --workload actors --size 1000
run nebula $NEB many.py --workload nodes --size 50 --tasks 10000
