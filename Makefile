# feedloom: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench serve clean lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,sqlite]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/feedloom demo --db data/feeds.db

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.run

serve: $(STAMP)
	$(BIN)/feedloom serve --db data/feeds.db

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[lint]'
	$(BIN)/ruff check crawler pipelines tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data/feeds.db data/feeds.db-wal data/feeds.db-shm
