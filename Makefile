# The README's two commands: `make run` (the main job) and `make test` (the whole suite).
# Both set everything up from a fresh clone; a stamp file makes the second call fast.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8188
COMFYUI_DIR ?=
# The Python that runs the suite against COMFYUI_DIR: that tree's own (with dev/test-requirements.txt
# installed into it), since the pinned .venv is made for the bundled ComfyUI. `make run` finds the tree's
# Python itself (dev/comfyui_setup.py: COMFYUI_PYTHON, else a venv in or beside the tree).
COMFYUI_PYTHON ?=
TEST_PY := $(if $(COMFYUI_PYTHON),$(COMFYUI_PYTHON),$(PY))
STATE := .comfyui
DEPS_STAMP := $(VENV)/.deps-stamp
COMFY_STAMP := $(STATE)/.install-stamp
PYTEST_ARGS ?=

.PHONY: setup run test lint reproduce gpu-check clean

setup: $(DEPS_STAMP) $(COMFY_STAMP)

$(DEPS_STAMP): dev/comfyui-requirements.txt dev/test-requirements.txt requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r dev/comfyui-requirements.txt -r dev/test-requirements.txt
	touch $@

$(COMFY_STAMP): $(DEPS_STAMP) dev/comfyui_setup.py
	$(PY) dev/comfyui_setup.py install --dest $(STATE)
	touch $@

# With COMFYUI_DIR the user's own ComfyUI is used and the bundled one is not installed.
BUNDLED := $(if $(COMFYUI_DIR),,$(COMFY_STAMP))

run: $(DEPS_STAMP) $(BUNDLED)
	$(PY) dev/comfyui_setup.py serve --port $(PORT) $(if $(COMFYUI_DIR),--comfyui-dir $(COMFYUI_DIR))

lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(DEPS_STAMP) $(BUNDLED) lint
	COMFYUI_DIR=$(abspath $(if $(COMFYUI_DIR),$(COMFYUI_DIR),$(STATE)/ComfyUI)) $(TEST_PY) -m pytest $(PYTEST_ARGS)

reproduce: $(DEPS_STAMP)
	$(PY) -m dpsl.reproduce --out reproduce-report.md

gpu-check: setup
	PYTHON=$(PY) bash benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) $(STATE) test-artifacts
