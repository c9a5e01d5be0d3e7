# Two set-up commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
# llama.cpp builds for the machine's CPU. These machines report AMX, but its tile instructions fault in the
# VMs they run in (ldtilecfg: a general protection fault on the first decode), so it is built without AMX.
LLAMA_FLAGS := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first, so nothing below pulls the CUDA one
	$(BIN)/pip install -q torch==2.13.0
	# llama-cpp-python has no wheel for this machine: pip builds it from source (about 7 minutes on 2 cores);
	# --no-cache-dir, so that a wheel cached from a build with other flags is never reused
	CFLAGS="$(LLAMA_FLAGS)" CXXFLAGS="$(LLAMA_FLAGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/pip install -q --no-cache-dir -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lmtailor demo --out demo_out

# The audit report test drives a real browser: Debian's Chromium, installed once (the machine and CI run as root).
$(CHROMIUM):
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

test: lint $(CHROMIUM)
	LMTAILOR_NO_PROGRESS=1 $(BIN)/pytest -q

# The fast tier: no model, no browser (about a minute); `make test` still runs everything.
test-fast: $(STAMP)
	LMTAILOR_NO_PROGRESS=1 $(BIN)/pytest -q -m "not model and not browser"

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/stream_memory.py

clean:
	rm -rf $(VENV) demo_out
