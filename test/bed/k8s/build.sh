#!/usr/bin/env bash
# Builds the Kubernetes test-bed binaries from Go modules (issue #3) and caches
# them OUTSIDE the repo; does nothing when the cached binary matches the pinned
# go.mod/go.sum. Only the Go module proxy is needed (no other downloads).
#
#   kube-apiserver  k8s.io/kubernetes (test/bed/k8s/apiserver/go.mod: staging repos replaced by their tags)
#   helm            helm.sh/helm/v3    (test/bed/k8s/helm/go.mod)
#
# Cache: ${DOCKBIND_K8S_CACHE:-/var/cache/dockbind-testbed/k8s}/bin/{kube-apiserver,helm}
# (test/support/k8s.ts reads the same variable). etcd comes from Debian (install.sh).
# Usage: build.sh [kube-apiserver|helm]...   (default: both)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${DOCKBIND_K8S_CACHE:-/var/cache/dockbind-testbed/k8s}"
mkdir -p "$cache/bin" "$cache/src"

command -v go >/dev/null 2>&1 || { echo "k8s build: go is not installed" >&2; exit 1; }

# $1 name, $2 template dir, $3 package, $4 ldflags
build_one() {
  local name=$1 tpl=$2 pkg=$3 ldflags=$4
  local out="$cache/bin/$name" stamp="$cache/bin/$name.stamp" want
  want=$(cat "$tpl/go.mod" "$tpl/go.sum" | sha256sum | cut -d' ' -f1)
  if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "k8s build: $name cached ($out)"
    return 0
  fi
  local src="$cache/src/$name"
  mkdir -p "$src"
  cp "$tpl/go.mod" "$tpl/go.sum" "$src/"
  echo "k8s build: building $name from $pkg (slow the first time: several minutes)"
  local t0=$SECONDS
  (cd "$src" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg")
  mv -f "$out.tmp" "$out"
  echo "$want" >"$stamp"
  echo "k8s build: $name built in $((SECONDS - t0)) s"
}

# "require X vN" or a line of a require block
mod_version() { awk -v m="$1" '{ for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v/) { print $(i + 1); exit } }' "$2"; }
kube_version() { mod_version k8s.io/kubernetes "$here/apiserver/go.mod"; }
helm_version() { mod_version helm.sh/helm/v3 "$here/helm/go.mod"; }

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(kube-apiserver helm)
for w in "${want[@]}"; do
  case "$w" in
    kube-apiserver)
      kv=$(kube_version); minor=$(echo "$kv" | cut -d. -f2)
      [ -n "$kv" ] || { echo "k8s build: no k8s.io/kubernetes version in apiserver/go.mod" >&2; exit 1; }
      build_one kube-apiserver "$here/apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
        "-s -w -X k8s.io/component-base/version.gitVersion=$kv -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
      ;;
    helm)
      hv=$(helm_version)
      [ -n "$hv" ] || { echo "k8s build: no helm.sh/helm/v3 version in helm/go.mod" >&2; exit 1; }
      build_one helm "$here/helm" helm.sh/helm/v3/cmd/helm \
        "-s -w -X helm.sh/helm/v3/internal/version.version=$hv -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      ;;
    *) echo "k8s build: unknown target $w" >&2; exit 2 ;;
  esac
done
