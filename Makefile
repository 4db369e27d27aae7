# Two commands do everything on a fresh machine:
#   make run   -- set up .venv and run cnnlab's main job
#   make test  -- set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cnnlab-installed

.PHONY: run test setup clean

setup: $(STAMP)

# torch==2.13.0 first when torch is missing: on these machines that pin takes the CPU
# wheel on local disk instead of pulling a multi-GB CUDA build from the index.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/cnnlab explain conv2d

test: $(STAMP)
	$(PY) -m pytest -q -n 2

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
