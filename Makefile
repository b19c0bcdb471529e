# The README's two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test experiments ui clean

setup: $(STAMP)

$(STAMP): pyproject.toml CMakeLists.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: setup  ## train the default preset on the embedded demo capture for 4 minutes, log it to mlruns/
	$(BIN)/rtnt-train train=demo

test: setup  ## the whole test suite (fast: tiny models, seconds of audio), two workers, one test file each
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

experiments: setup  ## re-run the grid experiments and regenerate their tables (about 40 min on 2 cores)
	scripts/run_experiments.sh

ui: setup  ## the MLflow UI on the local store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db --default-artifact-root $(CURDIR)/mlruns/artifacts

clean:
	rm -rf build outputs multirun
