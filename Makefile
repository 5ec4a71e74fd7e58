# dockbind — see README.md. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
NODE_TEST := node --import tsx --test --test-reporter=spec
# Node 20's --test does not expand globs: make does (test/unit/*.test.ts, test/integration/*.test.ts).
# Integration files share one dockerd; each starts its own Consul, nginx and controllers, names its
# containers and label selectors after itself and removes only its own containers (label dockbind-test.pid).
# EXCLUSIVE files change that dockerd for everyone: they restart it or put it in Swarm mode. They run one at a
# time with no other file on the shared engine; the others run INTEGRATION_JOBS files at a time. A file that would
# disturb the shared engine or be disturbed by other files' containers otherwise (a --registrator-compat controller
# registers ANY container of its engine; the event storm starts 200 containers at once) runs its containers on a
# private engine of its own (test/support/extraDockerd.ts). The storm runs beside the exclusive files.
# The churn soak has its own private dockerd, Consul and nginx too and runs beside the shared files. It asserts its
# controller's event-loop lag, which the other files' load on the same two cores would raise, so it runs in its
# own session with a raised CPU share (test/bed/cpu-priority.sh), and raises its controller's own (the controller
# leads a session of its own); its output is printed when it ends (SOAK_LOG), like the storm's (STORM_LOG).
INTEGRATION_TIMEOUT := --timeout=300000
INTEGRATION_JOBS ?= 3
EXCLUSIVE_FILES := $(addprefix test/integration/,docker-endpoints-swarm.test.ts docker-healthcheck-swarm.test.ts \
  faults-dockerd.test.ts plan-world.test.ts swarm.test.ts)
# Integration files run through test/bed/run-files.ts, which keeps the order it is given (`node --test` sorts its
# files, so an order there does nothing).
RUN_FILES := node --import tsx test/bed/run-files.ts
STORM_FILE := test/integration/faults-storm.test.ts
STORM_LOG := test-results/integration-storm.log
# The longest shared files (40-90 s of tests each, measured) start first, so none of them starts last and runs
# alone at the end of the shared phase.
SLOW_SHARED := $(addprefix test/integration/,docker-healthcheck.test.ts hostile.test.ts watch-stall-k8s.test.ts node-identity.test.ts \
  docker-only-leader.test.ts k8s-leader.test.ts faults-kill.test.ts file-transients.test.ts lb-output-dir-full.test.ts)
# The churn soak (test/integration/soak-*) runs SOAK_MINUTES (whole minutes; 5 in `make test`, 60 in `make soak`) in its
# own invocation: Node 20's --test-timeout is per file, so its timeout is fitted to its length (+10 min for set-up and checks).
SOAK_FILES := $(wildcard test/integration/soak-*.test.ts)
SOAK_RUN = $(NODE_TEST) --test-concurrency=1 --test-timeout=$$(( (SOAK_MINUTES * 60 + 600) * 1000 )) $(SOAK_FILES)
SOAK_LOG := test-results/soak-make-test.log

.PHONY: all deps testbed build lint lint-eslint lint-cycles lint-format format typecheck test test-unit test-integration demo bench bench-failures soak clean teardown crds flags

all: build

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

## testbed: install (apt) and start the real peers: dockerd, consul, nginx, haproxy; build the backend image
testbed: deps
	bash test/bed/ensure.sh

build: deps
	npx tsc -p tsconfig.json

typecheck: deps
	npx tsc -p tsconfig.json --noEmit

# Import cycles in src/ (type-only imports count): madge exits 1 on any. The layers themselves are
# eslint.config.js's no-restricted-imports (README "Repository map").
CYCLE_CHECK := npx madge --circular --extensions ts --ts-config tsconfig.json

# lint compiles (build) rather than only type-checking: the same check, and it leaves dist/ current for the
# compiled-controller test, whose own `tsc` then finds nothing to do (tsconfig.json: incremental, the build info
# is dist/tsconfig.tsbuildinfo).
## lint: types, ESLint (typescript-eslint strict, layer imports, functions <= 80 lines in src/), import cycles, Prettier's formatting
lint: build lint-eslint lint-cycles lint-format

# The parts of lint, each a target so that `make test` runs them beside each other and the unit tests.
lint-eslint: deps
	npx eslint .
lint-cycles: deps
	$(CYCLE_CHECK) src
lint-format: deps
	npx prettier --check .

## format: rewrite every file Prettier checks (.prettierrc.json, .prettierignore) in place
format: deps
	npx prettier --write .

# Unit files are independent (in-memory fakes, mocked timers): three at a time.
test-unit: deps
	$(NODE_TEST) --test-concurrency=3 --test-timeout=60000 $(sort $(wildcard test/unit/*.test.ts))

SHARED_FILES = $(SLOW_SHARED) $(sort $(filter-out $(SLOW_SHARED) $(SOAK_FILES) $(EXCLUSIVE_FILES) $(STORM_FILE),$(wildcard test/integration/*.test.ts)))

# Controllers and CLI runs under test start from the compiled dist/ (built first): each start costs about half
# the CPU of one through tsx, and a run starts dozens (test/support/controller.ts: controllerCommand).
test-integration soak: export DOCKBIND_TEST_ENTRY := built

# The shared files with the soak beside them, then the exclusive files with the storm beside them; every part runs
# even when an earlier one failed, and the target fails when any did. Each part's output is also kept
# (INTEGRATION_LOGS); on a failure test/bed/diagnose.sh ends the output with one line per failing test and the state
# of the shared engine. Ctrl-C (or TERM) stops the soak's session and the storm too.
SHARED_LOG := test-results/integration-shared.log
EXCLUSIVE_LOG := test-results/integration-exclusive.log
INTEGRATION_LOGS := $(SHARED_LOG) $(EXCLUSIVE_LOG) $(STORM_LOG) $(SOAK_LOG)
test-integration: deps testbed build
	mkdir -p test-results; \
	  export SOAK_MINUTES=$${SOAK_MINUTES:-5}; storm_pid=; \
	  setsid bash test/bed/cpu-priority.sh $(SOAK_RUN) > $(SOAK_LOG) 2>&1 & soak_pid=$$!; \
	  trap 'kill -TERM -- -$$soak_pid $$storm_pid 2>/dev/null; exit 130' INT TERM; \
	  $(RUN_FILES) --concurrency=$(INTEGRATION_JOBS) $(INTEGRATION_TIMEOUT) $(SHARED_FILES) | tee $(SHARED_LOG); shared=$${PIPESTATUS[0]}; \
	  $(RUN_FILES) $(INTEGRATION_TIMEOUT) $(STORM_FILE) > $(STORM_LOG) 2>&1 & storm_pid=$$!; \
	  $(RUN_FILES) --concurrency=1 $(INTEGRATION_TIMEOUT) $(EXCLUSIVE_FILES) | tee $(EXCLUSIVE_LOG); exclusive=$${PIPESTATUS[0]}; \
	  wait $$storm_pid; storm=$$?; echo "--- event storm ($(STORM_LOG), ran beside the exclusive files)"; cat $(STORM_LOG); \
	  wait $$soak_pid; soak=$$?; echo "--- churn soak ($(SOAK_LOG), ran beside the shared files)"; cat $(SOAK_LOG); \
	  echo "integration: shared files exit $$shared, exclusive files exit $$exclusive, storm exit $$storm, churn soak exit $$soak"; \
	  [ $$shared -eq 0 ] && [ $$exclusive -eq 0 ] && [ $$storm -eq 0 ] && [ $$soak -eq 0 ] || { bash test/bed/diagnose.sh $(INTEGRATION_LOGS); exit 1; }

## test: everything CI runs — lint, unit tests, integration tests against real dockerd/Consul/nginx
# The build and the lint parts are independent (none reads another's output) and time nothing: they run side by
# side, each one's output printed whole when it ends (about 30 s on two cores instead of 50 s one after the other).
# The unit tests follow alone: some run real timers of a few tens of ms, which a busy machine would stretch.
PRE_INTEGRATION := build lint-eslint lint-cycles lint-format
test: deps
	$(MAKE) --no-print-directory -j$(words $(PRE_INTEGRATION)) --output-sync=target $(PRE_INTEGRATION)
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-integration

## demo: the registrator + consul-template + nginx walkthrough, live (Ctrl-C tears down); installs only
## what it uses (docker.io, nginx, busybox-static, consul), not the whole test bed
demo: deps
	bash test/bed/ensure.sh --demo
	node --import tsx test/demo/demo.ts

## bench: dockbind vs registrator + consul-template on real dockerd/Consul/nginx, scenarios P1-P5, then the failure
## table (prints figures, targets and ratios, not pass/fail; knobs: BENCH_P1_RUNS, BENCH_P4_IDLE_S, ... see bench/compare.ts;
## BENCH_SKIP=failures leaves the failure table out)
bench: deps testbed
	bash bench/anchors/build.sh
	node --import tsx bench/compare.ts
	@case ",$$(echo "$${BENCH_SKIP:-}" | tr -d ' ')," in *,failures,*) echo "failure table skipped (BENCH_SKIP)";; *) node --import tsx bench/failures.ts;; esac

## bench-failures: the failure table alone (bench/failures.ts): the same faults against dockbind and registrator +
## consul-template on a private dockerd, outcomes measured; knobs BENCH_FAIL_WINDOW_S (60), BENCH_FAIL_STORM (200),
## BENCH_FAIL_ONLY=programs,dockerd,consul,rename,storm,swarm
bench-failures: deps testbed
	bash bench/anchors/build.sh
	node --import tsx bench/failures.ts

## soak: the fault suite (test/integration/faults-*) at length, then the churn soak for SOAK_MINUTES (default 60; plot and
## samples in test-results/soak/) (make test runs bounded versions). Knobs: FAULT_KILLS (kill -9 cycles, default 200),
## FAULT_CONSUL_RESTARTS (default 10), STORM_CONTAINERS (default 200), SOAK_MINUTES, SOAK_CHURN_MS, SOAK_EDIT_S
soak: deps testbed build
	FAULT_KILLS=$${FAULT_KILLS:-200} FAULT_CONSUL_RESTARTS=$${FAULT_CONSUL_RESTARTS:-10} \
	  $(NODE_TEST) --test-concurrency=1 --test-timeout=7200000 $(sort $(wildcard test/integration/faults-*.test.ts))
	export SOAK_MINUTES=$${SOAK_MINUTES:-60}; $(SOAK_RUN)

## crds: regenerate the ServiceBinding CRD (crds/ and charts/dockbind/crds/) from the JSON Schema
crds: deps
	node --import tsx scripts/gen-crd.ts

## flags: regenerate README.md's flag table from the option table (src/config/options.ts)
flags: deps
	node --import tsx scripts/gen-flags.ts

teardown:
	bash test/bed/teardown.sh

clean:
	rm -rf dist
