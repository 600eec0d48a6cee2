#!/usr/bin/env bash
# Failure injection against your own d2c deployment, then an audit of what consumers see.
#
# It runs KILL_CMD at random intervals (and START_CMD after each kill, where the platform does
# not restart d2c by itself), waits for the pipeline to settle, then runs `d2c audit`, which
# reads the incidents topic from the start and fails if any (id, version) was published with
# two different contents or any incident has a version gap. Keep events flowing meanwhile (your
# real traffic, or `d2c demo`'s generator pointed at the same brokers).
#
# Usage:
#   scripts/failure-injection.sh --kill 'CMD' [--start 'CMD'] [--rounds N] [--min SECONDS]
#                                [--max SECONDS] [--settle SECONDS] [--config FILE] [--d2c PATH]
# Examples:
#   # Kubernetes: the Deployment restarts the pod itself
#   scripts/failure-injection.sh --kill 'kubectl delete pod -l app=d2c --grace-period=0 --force'
#   # a local process
#   scripts/failure-injection.sh --kill 'pkill -9 -f "d2c run"' \
#     --start 'nohup d2c run --config config/d2c.toml >>d2c.log 2>&1 &'
# Exit status: 0 if the audit passes, 1 if the guarantee is broken, 2 on bad usage.
set -euo pipefail

kill_cmd="" start_cmd="" rounds=5 min=5 max=30 settle=60 config="config/d2c.toml" d2c="d2c"
while [ $# -gt 0 ]; do
  case "$1" in
    --kill) kill_cmd="$2"; shift 2 ;;
    --start) start_cmd="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --min) min="$2"; shift 2 ;;
    --max) max="$2"; shift 2 ;;
    --settle) settle="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --d2c) d2c="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$kill_cmd" ]; then
  echo "--kill is required (see --help)" >&2
  exit 2
fi
if ! [ "$min" -le "$max" ] 2>/dev/null; then
  echo "--min ($min) must be a number no larger than --max ($max)" >&2
  exit 2
fi

for i in $(seq 1 "$rounds"); do
  wait_s=$(( min + RANDOM % (max - min + 1) ))
  echo "round $i/$rounds: waiting ${wait_s}s, then: $kill_cmd"
  sleep "$wait_s"
  bash -c "$kill_cmd" || echo "  (kill command exited with $?)"
  if [ -n "$start_cmd" ]; then
    echo "  restarting: $start_cmd"
    bash -c "$start_cmd"
  fi
done
echo "letting the pipeline settle for ${settle}s"
sleep "$settle"
"$d2c" audit --config "$config"
