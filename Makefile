# Two commands do all the set-up on a fresh machine:
#   make run    - create .venv, install, start the main job
#   make test   - create .venv, install, bring the system programs the tests drive
#                 (scripts/system-deps.sh: chromium, chromium-driver, mosquitto), run the suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= ui,onnx,api,eval,test,ray
export HF_HUB_OFFLINE ?= 1

.PHONY: help install system-deps run test lint bench demo clean

help:
	@echo "make run          create .venv, install, start the dashboard (vlm-anomaly ui) on http://localhost:8501"
	@echo "make test         create .venv, install, bring chromium/chromedriver/mosquitto, lint-imports + the whole suite"
	@echo "make install      create .venv and install PyTorch and the project with its extras ($(EXTRAS))"
	@echo "make demo         the offline demo: normal street clips, one with an intruder, train and score"
	@echo "make lint         ruff check src tests bench"
	@echo "make bench        the pipeline benchmark (bench/bench_pipeline.py; docs/performance.md)"
	@echo "make system-deps  install the Debian packages the tests drive (scripts/system-deps.sh)"
	@echo "make clean        remove .venv and .pytest_cache"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/vlm-anomaly ui

demo: $(STAMP)
	$(VENV)/bin/vlm-anomaly demo

system-deps:
	bash scripts/system-deps.sh

test: $(STAMP) system-deps
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

bench: $(STAMP)
	$(PY) bench/bench_pipeline.py

clean:
	rm -rf $(VENV) .pytest_cache
