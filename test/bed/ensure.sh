#!/usr/bin/env bash
# Makes the machine ready for integration tests; idempotent, safe to rerun:
#  1. installs the test-bed packages (install.sh),
#  2. starts the shared dockerd if no daemon answers (detached, log in
#     /tmp/dockbind-testbed/dockerd.log) and builds local/dockbind-web:1 if
#     missing or outdated. Step 2 is test/support/{dockerd,image}.ts run by
#     test/bed/ensure.ts, the same code the tests call, so it needs node_modules.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# --demo: only what `make demo` needs (no Kubernetes binaries, Prometheus, Chromium or etcd).
if [ "${1:-}" = "--demo" ]; then
  bash test/bed/install.sh --demo
else
  bash test/bed/install.sh
  # kube-apiserver and helm from Go modules, cached outside the repo (no-op when cached).
  bash test/bed/k8s/build.sh
fi
if [ ! -d node_modules/tsx ]; then
  echo "ensure: node_modules/tsx missing; run 'npm ci' first" >&2
  exit 1
fi
node --import tsx test/bed/ensure.ts
