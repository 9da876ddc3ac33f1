# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv with the project installed
# (pip install -e ".[dev]") when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench soak clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## Train the default recipe (AGGAN, neutral → happy, embedded faces) on the CPU and evaluate it (≤ 10 min).
demo: $(STAMP)
	$(PY) train.py experiment=aggan_synth hydra.run.dir=runs/demo evaluate_after=true

## The whole test suite (what CI runs).
test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m datamodules.bench --embedded --loader
	$(PY) -m datamodules.bench

## Training throughput, suite overhead vs. a plain train_iteration loop, peak memory (and FLOPs/MFU on a GPU)
## for every method → bench_results/train.{json,md}. Pass options with BENCH_ARGS="--paper --precision bf16-mixed".
bench-train: $(STAMP)
	$(PY) -m suite.bench $(BENCH_ARGS)

## Long reliability run: resumes, SIGTERM, a three-job multirun (docs/reliability.md); not part of `make test`.
soak: $(STAMP)
	PY=$(PY) bash scripts/soak.sh

clean:
	rm -rf runs multirun outputs .pytest_cache
