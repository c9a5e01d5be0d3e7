# Two set-up commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
# llama.cpp builds for the machine's CPU. These machines report AMX, but its tile instructions fault in the
# VMs they run in (ldtilecfg: a general protection fault on the first decode), so it is built without AMX.
LLAMA_FLAGS := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)

.PHONY: demo test test-fast lint bench bench-quick clean

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

# The fast tier: no model, no browser (about 90 s); `make test` still runs everything.
test-fast: $(STAMP)
	LMTAILOR_NO_PROGRESS=1 $(BIN)/pytest -q -m "not model and not browser"

# Every benchmark, with the commands BENCHMARKS.md reports (hours: the Spider training arms take about an hour
# each). `make bench-quick` runs each one's quick check of the mechanics (minutes).
BENCH := $(BIN)/python bench

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BENCH)/dedup.py
	$(BENCH)/stream_memory.py
	$(BENCH)/llm.py
	$(BENCH)/break_cli.py --out bench/out/break_cli
	$(BENCH)/train_sql.py prepare
	$(BENCH)/train_sql.py speed
	$(BENCH)/train_sql.py zero-shot
	$(BENCH)/train_sql.py few-shot
	$(BENCH)/train_sql.py train --arm lora --minutes 50 --epochs 2 --lr 1e-3 --rank 32 --eval-every 1000
	$(BENCH)/train_sql.py train --arm full --minutes 60 --epochs 2 --lr 1e-4 --eval-every 1000
	$(BENCH)/train_sql.py train --arm lora_curated --minutes 50 --epochs 1.5 --lr 1e-3 --rank 32 --eval-every 1000
	$(BENCH)/train_sql.py table
	$(BENCH)/rag.py --work runs/bench_rag
	$(BIN)/lmtailor train bench/out/train_sql/data/train.jsonl --method lora --out runs/spider_lora40 --max-steps 40 \
		--learning-rate 1e-3 --lora-r 32 --row-length 512 --tokens-per-batch 2048 --export gguf --general-texts 0 \
		--mmlu 0 --eval-limit 0 --metric sql
	$(BENCH)/eval_speed.py --lora runs/spider_lora40/adapter.gguf --subsample 24
	$(BENCH)/icl.py spider --n 100
	$(BENCH)/icl.py pubmedqa --n 60

bench-quick: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BENCH)/dedup.py --limit 5000 --inject 500 --repeat 1
	$(BENCH)/stream_memory.py --sizes 10000 --modes read curate
	$(BENCH)/llm.py --prompts 4 --max-tokens 8
	$(BENCH)/break_cli.py --out bench/out/break_cli_quick --only bom
	$(BENCH)/train_sql.py prepare
	$(BENCH)/eval_speed.py --runs fast_subsample --subsample 8 --out bench/out/eval_speed_quick.json
	$(BENCH)/icl.py spider --n 8 --seeds 0 --out bench/out/icl_quick

clean:
	rm -rf $(VENV) demo_out
