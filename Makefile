# The README's two set-up commands: `make reproduce` and `make test`.
# Both create .venv when it is missing and install the package into it with
# the pinned versions of constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RESULTS ?= results/digits-mosaic

.PHONY: reproduce test test-all lint clean

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

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Includes the tests marked slow.
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

# ruff lint and format check (ruff is installed on first use).
lint: $(STAMP)
	test -x $(BIN)/ruff || $(BIN)/python -m pip install --quiet "ruff>=0.6"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) results build *.egg-info
