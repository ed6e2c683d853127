# Two entry points: `make run` (the main job on bundled data) and `make test` (lint, types, tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run demo test lint typecheck unit bench bench-btrm bench-pref bench-vae bench-lvm bench-serve bench-health clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned exactly: it installs the local CPU wheel instead of a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	BIN=$(BIN) bash scripts/run_default.sh

demo: $(STAMP)
	$(BIN)/termwise demo free-bits --run-dir runs/demo --overwrite

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/monitor_overhead.py --write
	$(BIN)/python bench/probe_scale.py --write
	$(BIN)/python bench/multihead.py --write

# About 20 minutes: trains the reward model on ../shared/data/corpora, then the baseline.
bench-btrm: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/btrm_vs_baselines.py --write

# About 40 minutes: TRL's RewardTrainer and termwise pref bt, gpm, bayes_gpm, 500 steps each.
bench-pref: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/pref_vs_trl.py --max-steps 500 --write

# About 45 minutes: six free-bits arms of termwise vae on ../shared/data/sequences, then the
# classification task (three arms) on ../shared/data/corpora.
bench-vae: $(STAMP)
	$(BIN)/python bench/vae_free_bits.py --data-dir ../shared/data --write
	$(BIN)/python bench/vae_free_bits.py --data-dir ../shared/data --task classify --write

# About 15 minutes: embeds ../shared/data/sequences once, then five predictors through the gates.
bench-lvm: $(STAMP)
	$(BIN)/python bench/lvm_gates.py --data-dir ../shared/data --write

# termwise serve under load: dynamic batching vs one request per forward pass.
bench-serve: $(STAMP)
	$(BIN)/python bench/serve_load.py --write

# The health rules' scorecard: healthy defaults on ../shared/data (two seeds), planted errors,
# and every suggested fix judged by the recipe's held-out metric. Hours on 2 CPU cores; on a
# machine with more, add --jobs N (docs/health.md says where it was measured).
bench-health: $(STAMP)
	$(BIN)/python bench/health_scorecard.py --write

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
