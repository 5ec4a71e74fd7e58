#!/usr/bin/env bash
# Prints a short diagnosis after a failed integration run, meant to be the LAST lines of `make test`
# (a CI log is often read from its tail):
#   bash test/bed/diagnose.sh LOG...
# - each LOG's (a spec reporter's output) failing tests, one line each: the name and the first line
#   of its error (the whole text stays in the LOG); tests cancelled because their parent failed are
#   counted, not listed;
# - then the log tail of the shared dockerd, kernel messages that explain a stuck engine (hung tasks,
#   unregister_netdevice, OOM kills), free disk and memory;
# - last, the one line that tells whether every file's common ground was there at the end: does the
#   shared dockerd answer `docker info` within 10 s, its process state and wchan (a task in state D
#   is stuck in the kernel and ignores signals), and the tasks in state D.
# Read-only: it changes nothing. Always exits 0.
set -u
DOCKERD_LOG=/tmp/dockbind-testbed/dockerd.log
MAX_FAILURES=8

echo "--- diagnosis (test/bed/diagnose.sh)"
for log in "$@"; do
  [ -f "$log" ] || continue
  # After the reporter's "failing tests:" heading: "✖ name (ms)" then the error's first non-empty line.
  awk -v max="$MAX_FAILURES" -v logf="$log" '
    /^✖ failing tests:/ { on = 1; next }
    on && /^✖ / { n++; name = substr($0, 5); sub(/ \([0-9.]+ms\)$/, "", name); want = 1; next }
    on && want && NF > 0 {
      want = 0; line = $0; sub(/^ +/, "", line)
      if (line ~ /did not finish before its parent/) c++
      else if (shown++ < max) printf "  %s: %s\n", substr(name, 1, 90), substr(line, 1, 160)
    }
    END { if (n > 0) printf "%s: %d failing, %d of them cancelled with their parent; %d listed above\n", logf, n, c, (shown < max ? shown : max) }
' "$log"
done

if [ -f "$DOCKERD_LOG" ]; then
  echo "$DOCKERD_LOG, last lines:"
  tail -n 4 "$DOCKERD_LOG" | cut -c1-200 | sed 's/^/  /'
fi
kernel=$(dmesg 2>/dev/null | grep -iE 'hung task|blocked for more than|unregister_netdevice|out of memory|oom-kill|killed process' | tail -n 4)
[ -z "$kernel" ] || { echo "kernel:"; echo "$kernel" | cut -c1-200 | sed 's/^/  /'; }
echo "disk free: $(df -h --output=target,avail / /tmp /var/lib/docker 2>/dev/null | tail -n +2 | sort -u | awk '{ printf "%s %s  ", $1, $2 }')memory available: $(awk '/^MemAvailable:/ { printf "%d MB", $2 / 1024 }' /proc/meminfo)"
pid=$(cat /var/run/docker.pid 2>/dev/null || true)
start=$(date +%s%N)
if out=$(timeout 10 docker info --format '{{.ServerVersion}} containers={{.Containers}} running={{.ContainersRunning}} swarm={{.Swarm.LocalNodeState}}' 2>&1); then
  answer="answered in $(( ($(date +%s%N) - start) / 1000000 )) ms: $out"
else
  answer="no answer within 10 s ($(echo "$out" | tail -n 1 | cut -c1-120))"
fi
if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
  state=$(awk '/^State:/ { print $2 $3 }' "/proc/$pid/status")
  echo "shared dockerd: pid $pid, state $state, wchan $(cat "/proc/$pid/wchan" 2>/dev/null || echo '?'); docker info $answer"
else
  echo "shared dockerd: no live process (pid file: ${pid:-none}); docker info $answer"
fi
stuck=$(ps -eo stat=,pid=,comm= | awk '$1 ~ /^D/ { printf "%s(%s) ", $3, $2 }')
[ -z "$stuck" ] || echo "tasks in state D: $stuck"
exit 0
