#!/usr/bin/env bash
# Runs the side-by-side benchmarks (bench/: its own cargo workspace, never built by the test
# suite) and rewrites the tables of BENCHMARKS.md between their marker comments
# (<!-- bench:NAME:start --> … <!-- bench:NAME:end -->), with the command, the machine and
# the date.
#
# Usage: scripts/bench.sh [--quick] [--only reload,dirs,read,watch,memory] [--no-cli]
#   --quick   short runs, for trying changes (the tables say that it was quick)
#   --only    the sections to run; the other tables are left as they are
#   --no-cli  do not build the `hotconf` CLI; the memory table then has only the
#             in-process `Pipeline::check` row
# Build directories: $CARGO_TARGET_DIR for bench/ (default target/bench) and
# $BENCH_CLI_TARGET_DIR for the release CLI (default target/bench-cli).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

runner_args=()
build_cli=1
only=""
while (($#)); do
  case "$1" in
    --quick) runner_args+=(--quick) ;;
    --only) runner_args+=(--only "$2"); only=$2; shift ;;
    --no-cli) build_cli=0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
command_line="scripts/bench.sh"
for a in "${runner_args[@]}"; do command_line+=" $a"; done
((build_cli)) || command_line+=" --no-cli"

# The CLI is only needed for the memory table.
if [ -n "$only" ] && [[ ",$only," != *,memory,* ]]; then build_cli=0; fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/bench}"
if ((build_cli)); then
  cli_target="${BENCH_CLI_TARGET_DIR:-$root/target/bench-cli}"
  echo "==> building the hotconf CLI (release) in $cli_target"
  CARGO_TARGET_DIR="$cli_target" cargo build --release --quiet -p hotconf-cli
  runner_args+=(--cli "$cli_target/release/hotconf")
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "==> running bench/ (${runner_args[*]:-full run})"
cargo bench --manifest-path bench/Cargo.toml --bench compare -- "${runner_args[@]}" --out "$out"

# The run's facts, for the meta block.
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- crates bench || commit+=" (with uncommitted changes)"
{
  echo "Command: \`$command_line\` (the runner: \`cargo bench --manifest-path bench/Cargo.toml --bench compare -- ${runner_args[*]}\`)."
  echo "Machine: \`nproc\` = $(nproc), $cpu, $mem, Linux $(uname -r); $(rustc --version)."
  echo "Measured on $(date -u '+%Y-%m-%d %H:%M UTC') at commit $commit, while other work shared the machine (which is why the runner interleaves)."
  if [ -n "$only" ]; then
    echo "Only the $only tables came from this run; the others (and the targets) are from an earlier one."
  fi
} > "$out/meta.md"

# Puts $out/NAME.md between NAME's markers; sections not run keep their old tables.
splice() {
  local name=$1 file=$out/$1.md
  [ -f "$file" ] || return 0
  if ! grep -q "<!-- bench:$name:start -->" BENCHMARKS.md; then
    echo "warning: BENCHMARKS.md has no bench:$name markers; its table is not written" >&2
    return 0
  fi
  awk -v start="<!-- bench:$name:start -->" -v end="<!-- bench:$name:end -->" -v f="$file" '
    $0 == start { print; print ""; while ((getline line < f) > 0) print line; print ""; skip = 1; next }
    $0 == end { skip = 0 }
    !skip { print }
  ' BENCHMARKS.md > "$out/BENCHMARKS.md"
  cp "$out/BENCHMARKS.md" BENCHMARKS.md
}
for section in meta targets reload dirs read watch memory; do
  splice "$section"
done
echo "==> BENCHMARKS.md rewritten"
