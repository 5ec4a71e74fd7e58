# dockbind — see README.md. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
NODE_TEST := node --import tsx --test --test-reporter=spec
# Node 20's --test does not expand globs: make does (test/unit/*.test.ts, test/integration/*.test.ts).
# Integration tests share one dockerd and start their own Consul/nginx: run files one at a time.
INTEGRATION_FLAGS := --test-concurrency=1 --test-timeout=300000

.PHONY: all deps testbed build lint typecheck test test-unit test-integration demo bench clean teardown

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

lint: typecheck
	npx eslint .

test-unit: deps
	$(NODE_TEST) $(sort $(wildcard test/unit/*.test.ts))

test-integration: deps testbed
	$(NODE_TEST) $(INTEGRATION_FLAGS) $(sort $(wildcard test/integration/*.test.ts))

## test: everything CI runs — lint, unit tests, integration tests against real dockerd/Consul/nginx
test: lint test-unit test-integration

## demo: the registrator + consul-template + nginx walkthrough, live (Ctrl-C tears down)
demo: deps testbed
	node --import tsx test/demo/demo.ts

## bench: latency and idle-cost figures on real dockerd/Consul/nginx (prints numbers, not pass/fail)
bench: deps testbed
	node --import tsx bench/docker-only.ts

teardown:
	bash test/bed/teardown.sh

clean:
	rm -rf dist
