#!/usr/bin/env bash
# Removes what test runs may have left behind (e.g. a test process that was
# SIGKILLed before its exit hook ran):
#  - containers and networks labelled dockbind-test=1,
#  - consul agents and nginx masters whose command line contains
#    /tmp/dockbind-testbed (with their process groups, i.e. nginx workers),
#  - tmpfs mounts under /tmp/dockbind-testbed,
#  - their directories under /tmp/dockbind-testbed.
# The shared dockerd, its log and the backend image are left in place.
set -uo pipefail
ROOT=/tmp/dockbind-testbed

if docker info >/dev/null 2>&1; then
  # Swarm services of the swarm test (their task containers are not labelled: swarm would restart them).
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]; then
    svcs=$(docker service ls -q --filter label=dockbind-test=1 2>/dev/null)
    [ -z "$svcs" ] || docker service rm $svcs >/dev/null
  fi
  ids=$(docker ps -aq --filter label=dockbind-test=1)
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  nets=$(docker network ls -q --filter label=dockbind-test=1)
  [ -z "$nets" ] || docker network rm $nets >/dev/null
fi

pids=()
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  [ "$pid" != "$$" ] || continue
  cmd=$(tr '\0' ' ' <"$dir/cmdline" 2>/dev/null) || continue
  [[ "$cmd" == *"$ROOT/"* ]] || continue
  case "$cmd" in
    "consul agent "* | */consul\ agent\ * | "nginx: master process "*) pids+=("$pid") ;;
    # issue #3: the test bed's control plane (test/support/k8s.ts)
    "etcd --name testbed "* | */kube-apiserver\ *) pids+=("$pid") ;;
  esac
done

signal_all() { # $1 = signal; the group when the process leads one (the harness starts them so)
  local sig=$1 pid pgid
  for pid in "${pids[@]}"; do
    pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
    if [ "$pgid" = "$pid" ]; then kill "-$sig" -- "-$pid" 2>/dev/null; else kill "-$sig" "$pid" 2>/dev/null; fi
  done
}

if [ ${#pids[@]} -gt 0 ]; then
  echo "teardown: stopping ${pids[*]}"
  signal_all TERM
  for _ in $(seq 50); do
    alive=0
    for pid in "${pids[@]}"; do # a zombie (stat Z) waiting for its reaper counts as gone
      st=$(ps -o stat= -p "$pid" 2>/dev/null) && [[ "$st" != Z* ]] && alive=1
    done
    [ $alive -eq 1 ] || break
    sleep 0.1
  done
  signal_all KILL
fi

# The output-directory test mounts a small tmpfs inside an nginx prefix; a killed run leaves it mounted.
awk -v root="$ROOT/" '$3 == "tmpfs" && index($2, root) == 1 { print $2 }' /proc/mounts | while read -r mnt; do
  umount "$mnt" 2>/dev/null || umount -l "$mnt"
done
rm -rf "$ROOT"/consul-* "$ROOT"/nginx-* "$ROOT"/image-* "$ROOT"/k8s-*
echo "teardown: done"
