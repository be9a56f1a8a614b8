# Two commands for a fresh machine: `make demo` (the main job on the bundled data) and
# `make test` (the whole suite). Each creates or refreshes its own virtual environment.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test docs bench clean

$(VENV)/.stamp-%: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$*]"
	touch $@

demo: $(VENV)/.stamp-plot
	$(PY) -m mkl_tp.fit

test: $(VENV)/.stamp-test,extract,deep,plot,docs,dask
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

docs: $(VENV)/.stamp-docs,deep
	$(MAKE) -C docs html SPHINXBUILD=$(abspath $(VENV))/bin/sphinx-build

bench: $(VENV)/.stamp-bench
	$(PY) benchmarks/bench_core.py

clean:
	rm -rf $(VENV) build *.egg-info docs/_build
