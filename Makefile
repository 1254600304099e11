# Two commands do all the set-up on a fresh machine:
#   make up STACK=dev   the main job (Pulumi on the local file backend; Docker target for dev)
#   make test           the full test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
OUT ?= build/$(STACK)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup tools up render check promtool-test test lint golden bench

setup: $(VENV)/.installed tools

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

# promtool and amtool judge every generated rule and route, the blackbox exporter's
# --config.check its probe modules: Debian's packages.
tools:
	@if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then \
	  echo "installing prometheus and prometheus-alertmanager (promtool, amtool)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager >/dev/null; \
	fi
	@if ! command -v prometheus-blackbox-exporter >/dev/null; then \
	  echo "installing prometheus-blackbox-exporter (its --config.check)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    prometheus-blackbox-exporter >/dev/null; \
	fi

up: setup
	@if command -v pulumi >/dev/null && docker info >/dev/null 2>&1; then \
	  pulumi stack select --create $(STACK) && pulumi up --stack $(STACK); \
	else \
	  echo "The Pulumi CLI or a Docker engine is missing: rendering and checking the $(STACK) stack instead."; \
	  $(PY) -m stack check --stack $(STACK) && $(PY) -m stack test --stack $(STACK) && \
	  $(PY) -m stack render --stack $(STACK) --out $(OUT); \
	fi

render: setup
	$(PY) -m stack render --stack $(STACK) --out $(OUT)

check: setup
	$(PY) -m stack check

promtool-test: setup
	$(PY) -m stack test --junit build/junit-promtool.xml

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --junitxml=build/junit-pytest.xml

lint: setup
	$(PY) -m ruff check .

# Rewrite tests/golden from the current definitions; review the diff like code.
golden: setup
	UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/test_golden.py

bench: setup
	$(PY) bench/bench_rules.py
	$(PY) bench/bench_program.py
