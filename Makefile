# evalhouse: set-up, demo, tests. Every target creates or updates .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo

.PHONY: demo test check bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# A synthetic corpus (engine/synth.py: model families with planted effects) in demo/corpus,
# ingested into a fresh warehouse/.
demo: $(STAMP)
	rm -rf $(DEMO)/corpus warehouse/data warehouse/tables warehouse/versions warehouse/quarantine warehouse/.pending warehouse/evalhouse.json warehouse/evalhouse.duckdb
	$(BIN)/evalhouse synth --runs 300 --seed 0 --out $(DEMO)/corpus
	$(BIN)/evalhouse ingest --quiet $(DEMO)/corpus
	$(BIN)/evalhouse summary --by model
	$(BIN)/evalhouse report --out $(DEMO)/report --config $(DEMO)/corpus/.evalhouse.toml
	@echo "Report: $(DEMO)/report/report.html and $(DEMO)/report/report.md"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check engine cli.py tests
	$(BIN)/ruff format --check engine cli.py tests
	$(BIN)/mypy

check: lint test

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(DEMO) warehouse/data warehouse/tables warehouse/versions warehouse/quarantine warehouse/.pending warehouse/evalhouse.* warehouse/.lock
