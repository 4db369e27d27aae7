# Two commands do everything on a fresh machine:
#   make run   -- set up .venv and run cnnlab's main job
#   make test  -- set up .venv, run the linters (ruff, mypy) and the test suite (all of it)
# and one more for developers: `make test-quick`, the suite without its slow kinds of test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cnnlab-installed

.PHONY: run test test-quick lint setup clean

RUN_STAMP := $(VENV)/.cnnlab-run-installed

setup: $(STAMP)

# torch==2.13.0 first when torch is missing: on these machines that pin takes the CPU
# wheel on local disk instead of pulling a multi-GB CUDA build from the index.
# `make run` installs cnnlab alone; `make test` adds the test extras (Keras, fvcore, onnxruntime, ...).
$(RUN_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e .
	@touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

# The main job: article 001's DepthwiseConv2D net (58,506 parameters) trained on all 50,000
# CIFAR-10 training images with the `sprint` preset (the `fast` preset cut to 7 epochs, no
# augmentation), validated on the 10,000 test images, then the result beside the article's
# 77.36% (README: what it reached, how long).
# The run directory is fixed, so rerunning after Ctrl-C continues from the last epoch; data from
# $(DATA) when given, else the cache, $$CNNLAB_DATA, ../shared/datasets or a download.
DATA    ?=
RUN_DIR ?= runs/make-run
MAIN_JOB = reproduce convtypes --preset sprint --cases 2 --out $(RUN_DIR) $(if $(DATA),--data-dir $(DATA))

run: $(RUN_STAMP)
	$(VENV)/bin/cnnlab $(MAIN_JOB)

# The main job's command line, for the test that runs it end to end with smoke-sized overrides.
.PHONY: main-job
main-job:
	@echo $(MAIN_JOB)

# The browser test of `explain --html` needs Debian's Chromium + ChromeDriver: installed here
# (apt-get, as root or with sudo). Without root: `make test BROWSER_TESTS=optional` skips that test.
BROWSER_TESTS ?= required

# `make test`: the linters first (ruff's formatter and rules, mypy on src/: pyproject.toml says which),
# then every test. Any of them failing fails the target, and so CI.
LINTED := src tests benchmarks scripts

lint: $(STAMP)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy

test: lint
	@if [ "$(BROWSER_TESTS)" = required ]; then ./scripts/install-browser.sh; fi
	CNNLAB_BROWSER_TESTS=$(BROWSER_TESTS) $(PY) -m pytest -q -n 2

# The developer's loop: every test but those marked slow, browser, postgres, distributed or interop
# (the markers are described in pyproject.toml); `make test` runs them all, as CI does.
QUICK ?= not slow and not browser and not postgres and not distributed and not interop

test-quick: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "$(QUICK)"

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
