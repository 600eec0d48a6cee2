#!/usr/bin/env bash
# The test command: installs what the tests need (once; later runs reuse it) and runs every test.
#   - Debian packages: prometheus (promtool, and the server tests/business.rs scrapes d2c with),
#     docker-compose (to validate the compose file),
#     python3-yaml (PyYAML, to read the Kubernetes manifests and Grafana provisioning in tests),
#     chromium and chromium-driver (the console's tests drive headless Chromium over WebDriver;
#     the versions Debian gives)
#   - tansu 0.6.0, the Kafka-compatible test broker, built from crates.io and cached
# Then: cargo test over the library, the binary and the integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
{ command -v promtool && command -v prometheus; } >/dev/null || need+=(prometheus)
command -v docker-compose >/dev/null || need+=(docker-compose)
python3 -c "import yaml" 2>/dev/null || need+=(python3-yaml)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

D2C_TANSU_BIN="$(scripts/install-tansu.sh)"
export D2C_TANSU_BIN

# The benchmarks must keep compiling (they are run by hand, see BENCHMARKS.md).
cargo test --locked --benches --no-run
# Integration tests each start their own broker and d2c processes; two at a time fit 2 cores.
# `failpoints` compiles in the test-only failpoints (tests/failpoints.rs injects panics with them).
cargo test --locked --features failpoints --lib --bins --tests -- --test-threads="${D2C_TEST_THREADS:-2}"
