# The README's two commands. Each creates .venv and installs into it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install clean

run: $(STAMP)
	$(BIN)/framecode run --out-dir out

test: $(STAMP)
	$(BIN)/python -m pytest

install: $(STAMP)

# CPU torch first (a local wheel); an unpinned torch would pull a multi-GB CUDA build.
# The ray extra too, so that tests/test_ray_engine.py runs in CI.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) out .framecode
