# The two commands that matter: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# make demo DEMO_ARGS=--keep-running: API, worker and dashboard stay up at the end
DEMO_ARGS ?=

.PHONY: demo test install services data browser clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel on this machine; an unpinned resolve would pull CUDA builds.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[worker,dev]'
	touch $@

install: $(VENV)/.installed

data:
	@bash scripts/ensure-dataset.sh

demo: install data
	$(VENV)/bin/oblivio demo $(DEMO_ARGS)

services:
	@bash scripts/ensure-services.sh

browser:
	@bash scripts/ensure-browser.sh

test: install data services browser
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .oblivio
