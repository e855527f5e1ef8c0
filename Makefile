# All set-up is idempotent: every target that needs the environment depends on `setup`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the project needs at run or test time (installed when run as root):
# chromium drives the browser tests (Playwright's Python API with executable_path)
SYSTEM_PACKAGES ?= chromium
# torch and torchvision are pinned in the same command as the project, so no resolver can
# swap in another torch build
PINS := "torch==2.14.1" "torchvision==0.29.1"

.PHONY: setup system-packages run run-lm test lint format bench bench-env bench-compare clean

setup: system-packages $(STAMP) web

system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing system packages:$$missing (run 'make setup' as root or install them)"; fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(PINS) -e ".[dev]"
	@$(BIN)/python -c "import torch, torchvision; \
	  assert torch.__version__.startswith('2.14.1'), torch.__version__; \
	  assert torchvision.__version__.startswith('0.29.1'), torchvision.__version__"
	@touch $(STAMP)

# --- browser UI (labeling/web) ----------------------------------------------------------------
# `make web` installs the locked npm packages and builds labeling/web/dist, which the API serves
# at "/". Both steps re-run only when their inputs changed: npm ci when package.json or
# package-lock.json is newer than node_modules' stamp; the build when a source, the config or
# the stamp is newer than dist/index.html (Vite rewrites it on every build).
WEB_DIR := labeling/web
WEB_DEPS_STAMP := $(WEB_DIR)/node_modules/.npm-ci.stamp
WEB_SOURCES := $(WEB_DIR)/index.html $(WEB_DIR)/vite.config.js $(shell find $(WEB_DIR)/src -type f 2>/dev/null)

.PHONY: web

web: $(WEB_DIR)/dist/index.html

$(WEB_DEPS_STAMP): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	cd $(WEB_DIR) && npm ci --no-audit --no-fund
	@touch $@

$(WEB_DIR)/dist/index.html: $(WEB_DEPS_STAMP) $(WEB_SOURCES)
	cd $(WEB_DIR) && { npm run build || { rm -f dist/index.html; exit 1; }; }
	@touch $@

# the platform on embedded defaults (SQLite, ./earthplat-data, one worker) on 127.0.0.1:8000,
# with a demo project from EARTHPLAT_DEMO_DATA (default ../shared/data/real) or EARTHPLAT_DEMO_STAC
run: setup
	$(BIN)/python -m api.launch

# the language-model demo: a tiny OLMo 2 on Tiny Shakespeare through the training core
run-lm: setup
	$(BIN)/olmo-lm train --config olmo_lm/configs/olmo2_tiny_shakespeare.yaml \
	  --trainer.enable_progress_bar false
	$(BIN)/olmo-lm generate --run_dir runs/olmo2_tiny_shakespeare --prompt "ROMEO:" \
	  --max_new_tokens 300

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not gpu" -p no:cacheprovider --durations=15

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python -m bench.traincore
	$(BIN)/python -m bench.materialize
	$(BIN)/python -m bench.packed_dataset
	$(BIN)/python -m bench.pack_formats
	$(BIN)/python -m bench.inference
	$(BIN)/python -m bench.floods_vs_threshold
	$(BIN)/python -m bench.api_latency

bench-compare: setup bench-env
	$(BIN)/python -m bench.olmoearth_compare

# The reference implementation for bench/olmoearth_compare.py, in its own environment only
# (its pins want torch<2.10; its code runs on 2.14.1, so it is installed with --no-deps).
bench-env: .venv-bench/.installed

.venv-bench/.installed:
	@test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q $(PINS) einops universal-pathlib huggingface_hub \
	  class-registry psutil cached-path dataclass-extensions pyyaml rich safetensors bettermap \
	  "setuptools<81"
	.venv-bench/bin/python -m pip install -q --no-deps olmoearth-pretrain==0.1.2 ai2-olmo-core==3.0.0
	@touch $@

clean:
	rm -rf $(VENV) runs .pytest_cache
