# The README's two set-up commands: `make reproduce` and `make test`.
# Both create .venv when it is missing and install the package into it with
# the pinned versions of constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RESULTS ?= results/digits-mosaic

.PHONY: reproduce test test-all wheels lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[cpu,test]"
	touch $(STAMP)

# Trains IDHN and the hard-only ablation at 12/24/32/48 bits on the embedded
# digits-mosaic dataset. FULL=1 runs more seeds and epochs (mean ± std).
reproduce: $(STAMP)
	$(BIN)/python -m keras_dhsps reproduce reproduce/configs/digits_mosaic.py \
		--output $(RESULTS) $(if $(FULL),--full,)

# The whole suite under TensorFlow, then the backend-neutral subset under
# JAX and under PyTorch (the CPU builds of the test extra). pytest exits 5
# when no test carries the marker: that is reported, not failed; every
# other status is passed on.
NEUTRAL_TESTS := -m "backend_neutral and not slow"
OTHER_BACKENDS := jax torch
test: $(STAMP)
	$(BIN)/python -m pytest -q
	for backend in $(OTHER_BACKENDS); do \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest -q $(NEUTRAL_TESTS); \
		status=$$?; \
		if [ $$status -eq 5 ]; then \
			echo "no backend_neutral tests under $$backend"; \
		elif [ $$status -ne 0 ]; then exit $$status; fi; \
	done

# Includes the tests marked slow.
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

# GPU machine without TensorFlow or Keras (see benchmarks/README.md, "GPU
# check"): wheels for it are fetched here, with network, by
# benchmarks/fetch_wheels.sh.
wheels:
	sh benchmarks/fetch_wheels.sh

# ruff lint and format check (ruff is installed on first use).
lint: $(STAMP)
	test -x $(BIN)/ruff || $(BIN)/python -m pip install --quiet "ruff>=0.6"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) results build *.egg-info
