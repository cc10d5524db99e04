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

.PHONY: install system-deps run test lint bench demo clean

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
