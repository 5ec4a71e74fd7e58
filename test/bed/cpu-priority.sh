#!/usr/bin/env bash
# Runs "$@" with a raised CPU share. For a test that asserts its own timing (the churn soak's
# event-loop lag) while other test files load the same cores. Start it with `setsid` so that it
# has its own session:
# - with the kernel's autogroups on (sched(7), "The autogroup feature") each session is one
#   scheduling group that competes with the other sessions as a whole, and a process's nice value
#   only ranks it inside its own group: the group's nice (/proc/self/autogroup) is set to -10;
# - the command itself runs at nice -10 too, for kernels without autogroups.
# A process the command starts in a session of its own (the test bed's managed processes are
# detached) gets an autogroup of its own at nice 0: the soak raises its controller's group itself
# (test/support/procs.ts, raiseCpuShare).
# Both need CAP_SYS_NICE (the test bed runs as root). Without it the command runs at the normal
# share (nice warns and runs it anyway). Blocks until the command exits; its exit status is ours.
set -u
echo -10 2>/dev/null >/proc/self/autogroup || true
exec nice -n -10 "$@"
