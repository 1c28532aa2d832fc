# The two commands of the README:  make demo  (set up, run every notebook, write figures/)
#                                   make test  (set up, run the whole test suite)
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
# Installed before the package: the local CPU build on machines that have it, the default build elsewhere.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.xmrec-installed

.PHONY: setup demo test lint notebooks benchmarks clean-notebooks

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "$(TORCH_SPEC)"
	$(VPY) -m pip install -q -e ".[dev,dask]"
	touch $(STAMP)

demo: $(STAMP)
	$(VPY) -m xmrec demo

test: $(STAMP)
	$(VPY) -m pytest -q

# Lint rules and formatter settings: [tool.ruff] in pyproject.toml (notebooks excluded: they run in the tests).
lint: $(STAMP)
	$(VENV)/bin/ruff check xmrec tests benchmarks tools
	$(VENV)/bin/ruff format --check xmrec tests benchmarks tools

benchmarks: $(STAMP)
	$(VPY) benchmarks/data_pipeline.py

# Strip outputs from the notebooks before committing (tests fail on committed outputs).
clean-notebooks: $(STAMP)
	$(VPY) -m xmrec strip-notebooks notebooks
