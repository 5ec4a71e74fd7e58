#!/usr/bin/env bash
# Builds the benchmark anchors from Go modules (the Go module proxy only) and
# caches the binaries OUTSIDE the repository, in $BENCH_BIN_DIR
# (default /var/cache/dockbind-bench/bin). Rebuilds only what is missing.
#
#   consul-template  hashicorp/consul-template, pinned tag below (go install)
#   registrator      gliderlabs/registrator at its newest commit, from the source
#                    kept in ../shared/anchors/registrator beside the repository
#                    (the Go module proxy refuses that module); copied out before
#                    building because shared/ is read-only; dependencies come from
#                    the Go module proxy
#
# A failed build is not fatal: the error is printed and saved in
# $BENCH_BIN_DIR/<name>.build-error, and bench/compare.ts reports that anchor
# as unavailable with that error. A prebuilt binary can be dropped into
# $BENCH_BIN_DIR (or pointed to with REGISTRATOR_BIN / CONSUL_TEMPLATE_BIN).
set -uo pipefail

BIN_DIR="${BENCH_BIN_DIR:-/var/cache/dockbind-bench/bin}"
CONSUL_TEMPLATE_VERSION="${CONSUL_TEMPLATE_VERSION:-v0.41.1}"
mkdir -p "$BIN_DIR"

if ! command -v go >/dev/null 2>&1; then
  echo "anchors: no go toolchain on PATH; anchors not built" >&2
  exit 0
fi

# build NAME MODULE@VERSION: go install into BIN_DIR unless the binary is there.
build() {
  local name="$1" target="$2" work log
  if [[ -x "$BIN_DIR/$name" ]]; then
    echo "anchors: $name cached ($BIN_DIR/$name)"
    return 0
  fi
  work="$(mktemp -d)"
  log="$work/build.log"
  echo "anchors: building $name from $target (go install, module mode)..."
  # A scratch dir outside any module: `go install pkg@version` resolves the
  # module (and synthesises a go.mod for pre-module repositories) by itself.
  if (cd "$work" && GO111MODULE=on GOFLAGS=-mod=mod GOBIN="$BIN_DIR" go install "$target") >"$log" 2>&1; then
    rm -f "$BIN_DIR/$name.build-error"
    echo "anchors: $name built ($("$BIN_DIR/$name" -version 2>&1 | head -n1 || true))"
  else
    cp "$log" "$BIN_DIR/$name.build-error"
    echo "anchors: $name NOT built; go install $target said:" >&2
    tail -n 5 "$log" | sed 's/^/  /' >&2
  fi
  rm -rf "$work"
}

# build_source NAME DIR: go build of a source tree copied out of DIR, unless the binary is there.
build_source() {
  local name="$1" src="$2" work log
  if [[ -x "$BIN_DIR/$name" ]]; then
    echo "anchors: $name cached ($BIN_DIR/$name)"
    return 0
  fi
  if [[ ! -f "$src/go.mod" ]]; then
    echo "anchors: $name source not found at $src" | tee "$BIN_DIR/$name.build-error" >&2
    return 0
  fi
  work="$(mktemp -d)"
  log="$work/build.log"
  cp -r "$src" "$work/src"
  chmod -R u+w "$work/src"
  echo "anchors: building $name from $src (go build)..."
  if (cd "$work/src" && GOFLAGS=-mod=mod go build -o "$BIN_DIR/$name" .) >"$log" 2>&1; then
    rm -f "$BIN_DIR/$name.build-error"
    echo "anchors: $name built"
  else
    cp "$log" "$BIN_DIR/$name.build-error"
    echo "anchors: $name NOT built; go build said:" >&2
    tail -n 5 "$log" | sed 's/^/  /' >&2
  fi
  rm -rf "$work"
}

build consul-template "github.com/hashicorp/consul-template@${CONSUL_TEMPLATE_VERSION}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_source registrator "${REGISTRATOR_SRC:-$REPO/../shared/anchors/registrator}"
exit 0
