#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs formatting, lints, docs and
# every test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests use, installed when missing (Debian). The watch tests save files
# with the real tools: vim, git, python3, sed, cp, mv, ln (coreutils) and kill (procps).
packages=()
command -v git >/dev/null 2>&1 || packages+=(git)
command -v vim >/dev/null 2>&1 || packages+=(vim)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
command -v sed >/dev/null 2>&1 || packages+=(sed)
command -v ln >/dev/null 2>&1 || packages+=(coreutils)
command -v kill >/dev/null 2>&1 || packages+=(procps)
# The unreadable-file test runs the binary as nobody when the tests run as root.
command -v setpriv >/dev/null 2>&1 || packages+=(util-linux)
# The admin page's test (crates/hotconf-admin/tests/browser.rs) drives a headless Chromium at
# $CHROMIUM or /usr/bin/chromium; under CI a missing browser fails that test.
[ -n "${CHROMIUM:-}" ] || [ -x /usr/bin/chromium ] || packages+=(chromium)
# etcd: the hotconf-etcd tests start their own etcd server and drive it with etcdctl; the
# etcd client's build compiles etcd's protobuf files with protoc; TLS tests make their
# certificates with openssl.
command -v etcd >/dev/null 2>&1 || packages+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || packages+=(etcd-client)
command -v protoc >/dev/null 2>&1 || packages+=(protobuf-compiler)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
if ((${#packages[@]})); then
  echo "==> installing ${packages[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${packages[@]}"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
# The optional JSON Schema support must not rot: build without it too.
cargo clippy -p hotconf-cli --no-default-features --locked -- -D warnings
# A TOML-only service builds the library without serde-saphyr, notify and tokio: keep that
# build compiling, and its unit tests passing (the lib's only, to keep CI time low).
cargo clippy -p hotconf --no-default-features --features toml --locked -- -D warnings
cargo test -p hotconf --no-default-features --features toml --locked --lib

echo "==> cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --all-features --locked --doc
else
  cargo test --workspace --all-features --locked --no-fail-fast
fi
