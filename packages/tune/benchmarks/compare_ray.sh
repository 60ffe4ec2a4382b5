#!/usr/bin/env bash
# Runs the tune workloads for Nebula and Ray Tune 2.60 back to back, holding the shared
# benchmark lock so no other benchmark overlaps, and appends one JSON line per run to OUT.
#   NEBULA_PY=.venv/bin/python RAY_PY=/work/peers/ray/bin/python bash compare_ray.sh OUT
set -euo pipefail
out=${1:-results.jsonl}
here=$(cd "$(dirname "$0")" && pwd)
nebula_py=${NEBULA_PY:-python}
ray_py=${RAY_PY:-/work/peers/ray/bin/python}
flock /work/bench.lock bash -c "
  set -e
  '$nebula_py' '$here/bench_tune.py' nebula --workload A --json '$out'
  '$ray_py' '$here/bench_tune.py' ray --workload A --reuse-actors true --json '$out'
  '$nebula_py' '$here/bench_tune.py' nebula --workload B --json '$out'
  '$ray_py' '$here/bench_tune.py' ray --workload B --json '$out'
"
