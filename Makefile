# Two commands do all the set-up on a fresh machine:
#   make up STACK=dev   the main job (Pulumi on the local file backend; Docker target for dev)
#   make test           the full test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
OUT ?= build/$(STACK)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup tools up render check promtool-test test test-fast test-all lint golden images bench bench-tests bench-judges bench-sandbox bench-remote-write

setup: $(VENV)/.installed tools

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

# The judges: Prometheus, promtool, Alertmanager, amtool, Jaeger, the node and blackbox exporters,
# built from their Go modules (tools/<name>/go.mod) at the versions the images ship, into .tools/
# (stack/judges.py: a stamp per version, so a second run only compares stamps). The postgres and
# redis exporters, whose modules the Go module proxy does not serve, and the sandbox's throwaway
# PostgreSQL and Redis come from Debian's packages, each checked by one of its binaries
# (package:binary), installed together with one apt-get update, only when one is missing.
# PostgreSQL's binaries are not on PATH: /usr/lib/postgresql/<version>/bin. busybox-static gives
# the local images (stack/images.py) their sh and wget; docker.io is the engine the dev stack is
# deployed on in the tests (tests/docker_engine.py starts a private dockerd of its own).
tools: $(VENV)/.installed
	@missing=""; \
	for pair in prometheus-postgres-exporter:prometheus-postgres-exporter \
	    prometheus-redis-exporter:prometheus-redis-exporter redis-server:redis-server \
	    busybox-static:busybox docker.io:dockerd; do \
	  command -v "$${pair#*:}" >/dev/null || missing="$$missing $${pair%%:*}"; \
	done; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    $$missing >/dev/null; \
	fi
	@$(PY) -m stack.judges build

# dev needs a Docker engine, prod a Kubernetes cluster (the kubeconfig's context, or
# kubernetes:context in Pulumi.prod.yaml).
TARGET_READY := $(if $(filter prod,$(STACK)),kubectl version --request-timeout=5s >/dev/null 2>&1,docker info >/dev/null 2>&1)

up: setup
	@if command -v pulumi >/dev/null && $(TARGET_READY); then \
	  pulumi stack select --create $(STACK) && pulumi up --stack $(STACK); \
	elif [ "$(STACK)" = prod ]; then \
	  echo "The Pulumi CLI or a reachable Kubernetes cluster is missing: checking and rendering the prod"; \
	  echo "stack into $(OUT); apply $(OUT)/kubernetes with kubectl once its Secrets are set (README)."; \
	  $(PY) -m stack check --stack $(STACK) && $(PY) -m stack render --stack $(STACK) --out $(OUT); \
	else \
	  echo "The Pulumi CLI or a Docker engine is missing: checking and rendering the $(STACK) stack into $(OUT),"; \
	  echo "then running the sandbox instead (the same generated config on real Prometheus, Alertmanager"; \
	  echo "and exporters on loopback; Ctrl-C stops it)."; \
	  $(PY) -m stack check --stack $(STACK) && $(PY) -m stack render --stack $(STACK) --out $(OUT) && \
	  $(PY) -m stack sandbox $(SANDBOX_ARGS); \
	fi

render: setup
	$(PY) -m stack render --stack $(STACK) --out $(OUT)

check: setup
	$(PY) -m stack check

promtool-test: setup
	$(PY) -m stack test --junit build/junit-promtool.xml

# Test tiers (pytest markers in pyproject.toml). The end-to-end tests mostly wait on real
# alerting time, so more workers than cores keep the cores busy; the tests of one module share
# its fixtures (a sandbox) in order on one worker (--dist loadfile). Without them the tests are
# CPU-bound: one worker more than the 2 cores is fastest (measured: 3 workers 1:56, 4 workers 2:12).
WORKERS ?= 4
FAST_WORKERS ?= 3
PYTEST := $(PY) -m pytest -n $(WORKERS) --dist loadfile

# Everything that proves behaviour at the shipped settings, the sandbox's end-to-end tests
# included (the README's test command and CI's): about 6 minutes on a fresh clone, set-up included.
test: setup
	$(PY) -m ruff check .
	$(PYTEST) -m "not slow" --junitxml=build/junit-pytest.xml

# The inner loop: no end-to-end test, no slow one (about 2 minutes).
test-fast: setup
	$(PY) -m pytest -n $(FAST_WORKERS) --dist loadfile -m "not slow and not e2e"

# Everything, the slow tier too (the full outage on a time-compressed sandbox: about 15 minutes in all).
test-all: setup
	$(PY) -m ruff check .
	$(PYTEST) --junitxml=build/junit-pytest-all.xml

lint: setup
	$(PY) -m ruff check .

# Rewrite tests/golden from the current definitions; review the diff like code.
golden: setup
	UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/test_golden.py

bench: setup
	$(PY) bench/bench_tests.py
	$(PY) bench/bench_rules.py
	$(PY) bench/bench_program.py
	$(PY) bench/bench_diff.py

# The test tiers' wall times (make test-fast, test and test-all run from a fresh clone: about 25 minutes).
bench-tests: setup
	$(PY) bench/bench_tests.py --tiers

# Local images of the dev stack's components built from the judges and Debian's binaries, tagged as
# the config names them (no registry is reachable here); DOCKER_HOST picks the engine.
images: setup
	$(PY) -m stack.images build

# The judges' cold build (empty Go build cache: about 8 minutes) and warm set-up (under a second).
bench-judges: setup
	$(PY) bench/bench_judges.py

# Time to detect on the sandbox (about 15 minutes).
bench-sandbox: setup
	$(PY) bench/bench_sandbox.py

# Remote write to the long-term store on the sandbox: throughput, CPU, the SLO period query (2 minutes).
bench-remote-write: setup
	$(PY) bench/bench_remote_write.py
