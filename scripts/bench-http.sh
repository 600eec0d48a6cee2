#!/usr/bin/env bash
# HTTP ingest beside Prometheus Alertmanager, on the same alerts, in one run, on loopback.
#
# Starts tansu (the test broker), `d2c run` and Alertmanager (clustering off, a null receiver),
# then loads each with wrk, one after the other: Alertmanager's `POST /api/v2/alerts` with a
# JSON array of 10 alerts, then d2c's `POST /api/v1/events/alertmanager` with a webhook (v4)
# payload carrying the same 10 alerts. Prints requests/s and alerts/s (requests/s × 10) of
# each, counting only 2xx answers, and the ratio. Every process it starts is stopped on exit.
#
#   scripts/bench-http.sh                 # 20 s per target, 2 wrk threads, 32 connections
#   BENCH_DURATION=10s BENCH_CONNECTIONS=64 scripts/bench-http.sh
#   BENCH_HTTP_DIRECT=true scripts/bench-http.sh    # d2c with ingest.http_direct (one hop)
#
# d2c runs as configured by default: through topics.raw (`ingest.http_direct = false`, the
# faster of the two on a broker sharing the cores, see BENCHMARKS.md "HTTP ingest vs
# Alertmanager"); BENCH_HTTP_DIRECT=true writes events straight to their partitions.
#
# Installs wrk, prometheus-alertmanager and curl with apt-get if missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-20s}
connections=${BENCH_CONNECTIONS:-32}
threads=${BENCH_THREADS:-2}
http_direct=${BENCH_HTTP_DIRECT:-false}
alerts_per_request=10

# --- tools -----------------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v alertmanager >/dev/null || command -v prometheus-alertmanager >/dev/null ||
  missing+=(prometheus-alertmanager)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench-http: missing ${missing[*]}; run as root to install them with apt-get" >&2
    exit 1
  fi
  echo "bench-http: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
alertmanager_bin=$(command -v alertmanager || command -v prometheus-alertmanager)
tansu_bin=${D2C_TANSU_BIN:-$(scripts/install-tansu.sh)}
echo "bench-http: building d2c (release)" >&2
cargo build --release --quiet --bin d2c
d2c_bin=target/release/d2c

# --- processes, stopped on exit --------------------------------------------------------------
work=$(mktemp -d -t d2c-bench-http.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  # tansu takes its time over SIGTERM; nothing of it needs keeping.
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # URL, what
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "bench-http: $2 did not answer $1 within 60 s; its log:" >&2
  tail -20 "$work/$2.log" >&2
  exit 1
}

kafka_port=$(free_port)
d2c_port=$(free_port)
am_port=$(free_port)

"$tansu_bin" broker --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" >"$work/tansu.log" 2>&1 &
pids+=($!)
tansu_pid=$!
for _ in $(seq 150); do (echo >"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null && break; sleep 0.2; done

D2C_KAFKA__BROKERS="127.0.0.1:$kafka_port" D2C_HTTP__LISTEN="127.0.0.1:$d2c_port" \
  D2C_INGEST__HTTP_DIRECT="$http_direct" D2C_LOG="warn" "$d2c_bin" run --config config/d2c.toml >"$work/d2c.log" 2>&1 &
pids+=($!)
d2c_pid=$!

cat >"$work/alertmanager.yml" <<'EOF'
route:
  receiver: "null"
receivers:
  - name: "null"
EOF
mkdir -p "$work/am-data"
"$alertmanager_bin" --config.file="$work/alertmanager.yml" --storage.path="$work/am-data" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
  --log.level=warn >"$work/alertmanager.log" 2>&1 &
pids+=($!)
am_pid=$!

wait_http "http://127.0.0.1:$d2c_port/readyz" d2c
wait_http "http://127.0.0.1:$am_port/-/ready" alertmanager

# --- the same 10 alerts in both formats --------------------------------------------------------
starts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
python3 - "$work" "$starts" "$alerts_per_request" <<'EOF'
import json, sys
work, starts, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = ["HighCpuLoad", "DiskFillingUp", "HighMemoryUsage", "HttpErrorRate", "HighLatency"]
alerts = [{
    "labels": {"alertname": names[i % len(names)], "instance": f"bench-host-{i // 2}:9100",
               "job": "node", "severity": ["warning", "critical"][i % 2]},
    "annotations": {"summary": f"bench alert {i}", "runbook_url": "https://runbooks.example/bench"},
    "startsAt": starts,
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up",
} for i in range(n)]
# Alertmanager's API v2: a JSON array of alerts (an unset endsAt is the zero time).
with open(f"{work}/am-v2.json", "w") as f:
    json.dump(alerts, f)
# The webhook (version 4) payload Alertmanager would post to d2c with the same alerts.
webhook = {
    "version": "4", "groupKey": "{}:{job=\"node\"}", "truncatedAlerts": 0, "status": "firing",
    "receiver": "d2c", "groupLabels": {"job": "node"}, "commonLabels": {"job": "node"},
    "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093",
    "alerts": [dict(a, status="firing", fingerprint=f"{i:016x}") for i, a in enumerate(alerts)],
}
with open(f"{work}/webhook.json", "w") as f:
    json.dump(webhook, f)
EOF

# A wrk script that POSTs one file and, at the end, prints one machine-readable line.
lua() { # body file
  cat <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("$1", "rb"))
wrk.body = f:read("*a")
f:close()
function done(summary, latency, requests)
  local e = summary.errors
  local failed = e.status + e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT requests=%d failed=%d non2xx=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, failed, e.status, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
EOF
}
lua "$work/am-v2.json" >"$work/am.lua"
lua "$work/webhook.json" >"$work/d2c.lua"

# Both endpoints must accept the body before anything is measured.
check() { # url, body, expected status
  local code
  code=$(curl -sS -o "$work/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$2" "$1")
  if [ "$code" != "$3" ]; then
    echo "bench-http: $1 answered $code, expected $3: $(cat "$work/answer")" >&2
    exit 1
  fi
}
am_url="http://127.0.0.1:$am_port/api/v2/alerts"
d2c_url="http://127.0.0.1:$d2c_port/api/v1/events/alertmanager"
check "$am_url" "$work/am-v2.json" 200
check "$d2c_url" "$work/webhook.json" 202

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

declare -A rps p50 p99 cpu
run() { # name, url, lua, pids of the server side
  local name=$1 url=$2 script=$3
  shift 3
  echo "bench-http: warming up $name (3 s), then $duration with $threads threads, $connections connections" >&2
  wrk -t"$threads" -c"$connections" -d3s -s "$script" "$url" >/dev/null
  local before=() pid out line
  for pid in "$@"; do before+=("$(cpu_seconds "$pid")"); done
  out=$(wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$script" "$url")
  local i=0 used=()
  for pid in "$@"; do
    used+=("$(awk -v a="${before[$i]}" -v b="$(cpu_seconds "$pid")" 'BEGIN { printf "%.1f", b - a }')")
    i=$((i + 1))
  done
  echo "$out" >"$work/wrk-$name.txt"
  line=$(grep '^RESULT' <<<"$out")
  local requests failed seconds
  requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
  failed=$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")
  seconds=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$line")
  if [ "$failed" -gt 0 ]; then
    echo "bench-http: $name: $failed of $requests requests failed or were not 2xx" >&2
  fi
  rps[$name]=$(awk -v r="$requests" -v f="$failed" -v s="$seconds" 'BEGIN { printf "%.0f", (r - f) / s }')
  p50[$name]=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$line")
  p99[$name]=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")
  cpu[$name]=$(awk -v s="$seconds" -v u="${used[*]}" \
    'BEGIN { n = split(u, a, " "); t = 0; for (i = 1; i <= n; i++) t += a[i]; printf "%.2f", t / s }')
  cpu[$name.detail]="${used[*]}"
}

# Alertmanager first: d2c's pipeline then has nothing of its own left to do meanwhile.
run alertmanager "$am_url" "$work/am.lua" "$am_pid"
run d2c "$d2c_url" "$work/d2c.lua" "$d2c_pid" "$tansu_pid"

# --- report ------------------------------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "machine: $(nproc) CPUs ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
echo "d2c $("$d2c_bin" --version 2>/dev/null | awk '{print $2}') on tansu $(basename "$(dirname "$(dirname "$tansu_bin")")" | sed 's/tansu-//') (memory storage); $("$alertmanager_bin" --version 2>&1 | head -1)"
echo "wrk -t$threads -c$connections -d$duration, $alerts_per_request alerts per request, loopback; 2xx answers only"
echo "d2c ingest.http_direct=$http_direct"
echo
fmt='%-40s %11s %10s %8s %8s %10s\n'
# shellcheck disable=SC2059
printf "$fmt" target requests/s alerts/s p50_ms p99_ms cpu_cores
# shellcheck disable=SC2059
printf "$fmt" "Alertmanager POST /api/v2/alerts" "${rps[alertmanager]}" \
  "$((rps[alertmanager] * alerts_per_request))" "${p50[alertmanager]}" "${p99[alertmanager]}" \
  "${cpu[alertmanager]}"
# shellcheck disable=SC2059
printf "$fmt" "d2c POST /api/v1/events/alertmanager" "${rps[d2c]}" \
  "$((rps[d2c] * alerts_per_request))" "${p50[d2c]}" "${p99[d2c]}" "${cpu[d2c]}"
read -r d2c_cpu tansu_cpu <<<"${cpu[d2c.detail]}"
echo "(cpu_cores: CPU seconds the server side used per second of load; for d2c its process, with"
echo " the pipeline consuming what was accepted, plus the broker: ${d2c_cpu} + ${tansu_cpu} CPU seconds"
echo " in all; wrk used the rest of the machine)"
awk -v d="${rps[d2c]}" -v a="${rps[alertmanager]}" -v dc="${cpu[d2c]}" -v ac="${cpu[alertmanager]}" \
  'BEGIN { if (a > 0) printf "\nratio d2c / Alertmanager: %.1fx alerts/s, %.1fx alerts per CPU second\n",
           d / a, (dc > 0 && ac > 0) ? (d / dc) / (a / ac) : 0 }'
accepted=$(curl -fsS "http://127.0.0.1:$d2c_port/metrics" |
  awk '/^d2c_http_ingest_requests_total\{format="alertmanager",result="accepted"\}/ { print $2 }')
echo "d2c acknowledged ${accepted:-?} requests in all (broker acknowledgement awaited for each)"
