#!/usr/bin/env bash
# The demo under load, as a user runs it: builds the release binary, starts it on a config of
# its own, drives 8 kept-alive connections for 60 s while rewriting the config 100 times
# (valid, invalid and restart-required saves, through rename, in-place writes, cp, sed -i
# and vim -es), checks every outcome and prints latency, rate and RSS figures.
# Extra arguments go to `hotconf-demo load` (see `--help`): e.g. --duration 120 --saves 200.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p hotconf-demo
exec cargo run -q --release --locked -p hotconf-demo -- load --duration 60 --saves 100 "$@"
