# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
EXTRAS ?= cpu,test
STAMP  := $(VENV)/.installed-$(EXTRAS)
DEMO_DIR ?= runs/demo
# short: the demo ARMs come from pretrained/; full: they are trained here (about 18 more minutes).
DEMO_TRAIN ?= short
# pytest-xdist workers; each test module runs whole on one worker (its module fixtures train once),
# the longest modules first (tests/conftest.py LONGEST_FIRST).
TEST_WORKERS ?= 2

.PHONY: install lint format demo test test-fast clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) setup.py
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

# ruff (configured in pyproject.toml): lint and format check; `make format` rewrites the files.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Everything (CI's command).
test: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=20 tests

# The fast tier: unit, exactness and causality tests on untrained tiny models; no training run,
# export or launcher subprocess (tests/conftest.py marks those `slow`).
test-fast: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow" --durations=10 tests

demo: $(STAMP)
	DEMO_TRAIN=$(DEMO_TRAIN) bash launch/demo.sh $(DEMO_DIR)

clean:
	rm -rf $(VENV) runs
