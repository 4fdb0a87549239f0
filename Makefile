# Zizi Video: `make test` and `make demo` work from a fresh clone; each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.zizi-installed
PYTEST_ARGS ?=

.PHONY: setup comfyui models test test-unit demo lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when a requirement file changes. constraints.txt pins the torch build of this project's venv.
$(INSTALLED): requirements.txt requirements-dev.txt constraints.txt devtools/comfyui_provision.py | $(PY)
	$(PY) -m pip install --quiet -c constraints.txt -r requirements.txt -r requirements-dev.txt
	$(PY) -m devtools.comfyui_provision --install-requirements
	touch $@

setup: $(INSTALLED)

comfyui: setup
	$(PY) -m devtools.comfyui_provision

models: setup
	$(PY) -m devtools.random_sd15 --full --tiny --tiny-base --temporal

# pytest exits 5 when it collects no test: report it and fail, an empty suite is never a pass here.
test: setup models
	bash devtools/install_chromium.sh
	$(PY) -m pytest --durations=15 $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

test-unit: setup
	$(PY) -m pytest -m "not server" $(PYTEST_ARGS)

demo: setup
	$(PY) -m devtools.demo $(DEMO_ARGS)

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf output .pytest_cache .ruff_cache
