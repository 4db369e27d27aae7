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

# The main job: article 000's DenseNet for one epoch on 5,000 CIFAR-10 training images (data
# from the cache, $$CNNLAB_DATA, ../shared/datasets, or a download), then the history table.
run: $(STAMP)
	$(VENV)/bin/cnnlab train densenet_cifar --epochs 1 --limit-train 5000 --out runs/make-run-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	$(PY) -m pytest -q -n 2

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
