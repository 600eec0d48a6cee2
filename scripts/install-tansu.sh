#!/usr/bin/env bash
# Builds the test broker (tansu 0.6.0, a Kafka-compatible broker in Rust) from crates.io once and
# caches the binary, so later runs start at once. Prints the path of the binary on stdout.
set -euo pipefail
version=0.6.0
cache="${D2C_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/d2c}/tansu-$version"
bin="$cache/bin/tansu"
if [ ! -x "$bin" ]; then
  echo "building tansu $version into $cache (about 13 minutes on 2 cores, once)" >&2
  cargo install tansu --version "$version" --no-default-features --features dynostore,libsql \
    --locked --root "$cache" >&2
fi
echo "$bin"
